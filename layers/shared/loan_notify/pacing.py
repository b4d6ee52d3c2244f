"""Provider pacing: one shared send rate per provider, taken a token at a time, critical notices first.

Every sender (any number of consumer Lambdas) asks the Pacer before it calls a provider. The shared state lives
in a SlotStore:

- one counter per (provider, one-second slot). A send takes a token with one conditional increment
  (count < the slot's limit), so across all processes a slot never holds more sends than its limit. The n-th
  token of a slot with L tokens is due at n-1/L of the second: a sender that took it early waits until then, so
  sends are spread evenly over the second instead of all leaving at its start. A provider's own limit is a token
  bucket a second deep; sends bunched at the start of each second leave it no room for a moment's jitter, sends
  spread over it leave it a token of slack;
- one rate item per provider: the adaptive rate (AIMD). A throttle multiplies it down (once per burst), successes
  add it back a step per second, never above the configured rate. Written with optimistic concurrency (a version).

Critical first, by booking ahead: bulk takes tokens only from the current slot; a critical sender whose current
slot is full books a token in the next slot that still has one and waits until it is due. Bulk therefore
uses the full rate when no critical notice waits, and a critical notice never waits more than about a second
behind any bulk backlog (as long as critical demand itself stays under the rate).

Plain Python, ports passed in (the store, the clock), so the Lambdas, the unit tests and the scale model
(loadtools.scale_model, on a simulated clock) run this same code.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from botocore.exceptions import ClientError

from loan_notify.errors import conditional_check_failed

Seconds = Callable[[], float]  # wall-clock epoch seconds: slots are aligned on it across processes

UNPACED = 0.0  # acquire's answer for a provider with no configured rate (the app inbox)
_PAST_START = 0.001  # a wait ends just past the slot's start, so floating point cannot land it in the slot before


@dataclass(frozen=True)
class RateState:
    """The adaptive rate of one provider, shared by every sender."""

    rate: float  # sends per second allowed now
    version: int  # optimistic concurrency: a write expects the version it read
    changed_at: float  # when the rate last changed (epoch seconds)
    decreased: bool  # the last change was a decrease (a throttle)


class SlotStore(Protocol):
    def take(self, provider: str, slot: int, limit: int) -> int:
        """Atomically count one send in (provider, slot) if fewer than limit are counted there: its number in the
        slot (1 to limit), or 0 if the slot is full."""
        ...

    def get_rate(self, provider: str) -> RateState | None: ...

    def put_rate(self, provider: str, state: RateState, *, expected_version: int) -> bool:
        """Write state if the stored version is expected_version (0: no item yet); False if someone wrote first."""
        ...


def slot_limit(rate: float, slot: int) -> int:
    """Tokens in one one-second slot: a fractional rate spreads its fraction over consecutive slots."""
    return max(0, math.floor(rate * (slot + 1)) - math.floor(rate * slot))


class MemorySlotStore:
    """Thread-safe in-process store: unit tests, and the scale model on its simulated clock."""

    def __init__(self, keep_slots: int = 120) -> None:
        self._lock = threading.Lock()
        self._slots: dict[tuple[str, int], int] = {}
        self._rates: dict[str, RateState] = {}
        self._keep = keep_slots
        self._newest = 0
        self.takes = 0  # calls, as the DynamoDB store would make them (a full slot still costs a write)
        self.rate_reads = 0
        self.rate_writes = 0

    def take(self, provider: str, slot: int, limit: int) -> int:
        with self._lock:
            if limit <= 0:
                return 0
            self.takes += 1
            key = (provider, slot)
            taken = self._slots.get(key, 0)
            if taken >= limit:
                return 0
            self._slots[key] = taken + 1
            if slot > self._newest + self._keep:  # the TTL: forget slots nobody can take any more
                self._newest = slot
                self._slots = {k: v for k, v in self._slots.items() if k[1] > slot - self._keep}
            return taken + 1

    def taken(self, provider: str, slot: int) -> int:
        with self._lock:
            return self._slots.get((provider, slot), 0)

    def get_rate(self, provider: str) -> RateState | None:
        with self._lock:
            self.rate_reads += 1
            return self._rates.get(provider)

    def put_rate(self, provider: str, state: RateState, *, expected_version: int) -> bool:
        with self._lock:
            self.rate_writes += 1
            current = self._rates.get(provider)
            if (current.version if current else 0) != expected_version:
                return False
            self._rates[provider] = state
            return True


class DynamoSlotStore:
    """The shared store in DynamoDB (the PacingTable; a boto3 Table resource is passed in).

    Items, key `pk` (S), expiring through the TTL attribute `expires_at`:
    - `slot#<provider>#<epoch second>`: `taken` (N), the sends counted in that second;
    - `rate#<provider>`: `rate` (N), `version` (N), `changed_at` (N), `decreased` (BOOL).
    """

    def __init__(self, table: Any, *, slot_ttl_s: int = 300, rate_ttl_s: int = 86_400) -> None:
        self._table = table
        self._slot_ttl = slot_ttl_s
        self._rate_ttl = rate_ttl_s

    def take(self, provider: str, slot: int, limit: int) -> int:
        if limit <= 0:
            return 0
        try:
            answer = self._table.update_item(
                Key={"pk": f"slot#{provider}#{slot}"},
                UpdateExpression="ADD #taken :one SET #expires = :expires",
                ConditionExpression="attribute_not_exists(#taken) OR #taken < :limit",
                ExpressionAttributeNames={"#taken": "taken", "#expires": "expires_at"},
                ExpressionAttributeValues={":one": 1, ":limit": limit, ":expires": slot + self._slot_ttl},
                ReturnValues="UPDATED_NEW")
        except ClientError as err:
            if conditional_check_failed(err):
                return 0
            raise
        return int(answer["Attributes"]["taken"])

    def get_rate(self, provider: str) -> RateState | None:
        item = self._table.get_item(Key={"pk": f"rate#{provider}"}, ConsistentRead=True).get("Item")
        if not item:
            return None
        return RateState(rate=float(item["rate"]), version=int(item["version"]),
                         changed_at=float(item["changed_at"]), decreased=bool(item["decreased"]))

    def put_rate(self, provider: str, state: RateState, *, expected_version: int) -> bool:
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"} if expected_version == 0 else
            {"ConditionExpression": "#version = :expected", "ExpressionAttributeNames": {"#version": "version"},
             "ExpressionAttributeValues": {":expected": expected_version}})
        try:
            self._table.put_item(Item={
                "pk": f"rate#{provider}", "rate": Decimal(str(round(state.rate, 3))), "version": state.version,
                "changed_at": Decimal(str(round(state.changed_at, 3))), "decreased": state.decreased,
                "expires_at": int(state.changed_at) + self._rate_ttl}, **condition)
        except ClientError as err:
            if conditional_check_failed(err):
                return False
            raise
        return True


class Pacer:
    """Send tokens per provider at an adaptive shared rate, critical notices first.

    rates: configured sends per second, keyed by provider ("sns-sms@us-east-1") or by its kind ("sns-sms", every
    region). A provider with neither (the app inbox) is not paced.
    """

    def __init__(self, store: SlotStore, rates: Mapping[str, float], *, clock: Seconds = time.time,
                 decrease: float = 0.7, increase: float = 0.5, min_rate: float = 1.0, hold_s: float = 1.0,
                 cache_s: float = 1.0, lookahead: int = 5) -> None:
        self._store = store
        self._rates = dict(rates)
        self._clock = clock
        self._decrease = decrease  # multiplicative decrease on a throttle
        self._increase = increase  # additive increase, sends/s per step; at most one step per hold_s, globally
        self._min_rate = min_rate
        self._hold = hold_s  # throttles within this long after a decrease belong to the same burst
        self._cache_s = cache_s
        self._lookahead = lookahead
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, RateState | None]] = {}
        self._full: dict[str, int] = {}  # provider -> the slot this process already found full
        self._booked: dict[str, list[float]] = {}  # provider -> when the tokens this process holds are due

    def configured(self, provider: str) -> float | None:
        return self._rates.get(provider, self._rates.get(provider.partition("@")[0]))

    def rate(self, provider: str) -> float:
        """The shared rate now (read at most once per cache_s by this process)."""
        configured = self.configured(provider)
        if configured is None:
            return math.inf
        state = self._state(provider)
        return configured if state is None else min(configured, max(self._min_rate, state.rate))

    def acquire(self, provider: str, *, critical: bool = False) -> float:
        """0.0: a token is taken, send now. Otherwise no token yet: ask again after that many seconds.

        One conditional write in the usual case. A token due later in its second is held for this process, and
        the sender is told to come back when it is due. A bulk sender that finds the second full waits for the
        next; a critical one books a token in the next second that has one.
        """
        if self.configured(provider) is None:
            return UNPACED
        now = self._clock()
        slot = math.floor(now)
        if self._use_booking(provider, now):
            return 0.0
        if self._full.get(provider) != slot:
            limit = slot_limit(self.rate(provider), slot)
            number = self._store.take(provider, slot, limit)
            if number:
                return self._due(provider, slot + (number - 1) / limit, now)
            self._full[provider] = slot
        if critical:
            for ahead in range(1, self._lookahead + 1):
                limit = slot_limit(self.rate(provider), slot + ahead)
                number = self._store.take(provider, slot + ahead, limit)
                if number:
                    return self._due(provider, slot + ahead + (number - 1) / limit, now)
            return slot + self._lookahead + 1 - now + _PAST_START
        return slot + 1 - now + _PAST_START

    def _due(self, provider: str, due: float, now: float) -> float:
        """A token taken for `due`: send now if that moment came, else hold it and come back then."""
        if due <= now:
            return 0.0
        with self._lock:
            self._booked.setdefault(provider, []).append(due)
        return due - now + _PAST_START

    def throttled(self, provider: str) -> None:
        """The provider throttled a send: lower the shared rate (once per burst). The caller requeues the send."""
        configured = self.configured(provider)
        if configured is None:
            return
        for _ in range(3):
            now = self._clock()
            state = self._store.get_rate(provider)
            if state is not None and state.decreased and now - state.changed_at < self._hold:
                self._remember(provider, now, state)
                return  # this burst already lowered the rate
            current = configured if state is None else min(configured, state.rate)
            new = RateState(max(self._min_rate, current * self._decrease), (state.version if state else 0) + 1,
                            now, decreased=True)
            if self._store.put_rate(provider, new, expected_version=state.version if state else 0):
                self._remember(provider, now, new)
                return

    def succeeded(self, provider: str) -> None:
        """The provider accepted a send: raise the shared rate a step (at most once per hold_s, globally)."""
        configured = self.configured(provider)
        if configured is None:
            return
        state = self._state(provider)
        now = self._clock()
        if state is None or state.rate >= configured or now - state.changed_at < self._hold:
            return
        new = RateState(min(configured, state.rate + self._increase), state.version + 1, now, decreased=False)
        if self._store.put_rate(provider, new, expected_version=state.version):
            self._remember(provider, now, new)
        else:
            with self._lock:
                self._cache.pop(provider, None)  # someone else changed it: read it again next time

    def _state(self, provider: str) -> RateState | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(provider)
        if cached is not None and now - cached[0] < self._cache_s:
            return cached[1]
        state = self._store.get_rate(provider)
        self._remember(provider, now, state)
        return state

    def _remember(self, provider: str, now: float, state: RateState | None) -> None:
        with self._lock:
            self._cache[provider] = (now, state)

    def _use_booking(self, provider: str, now: float) -> bool:
        """Use a held token whose moment came. A token is good until its second ends: one not used by then is
        spent (sending it later would put two seconds' sends into one)."""
        with self._lock:
            booked = [due for due in self._booked.get(provider, []) if now < math.floor(due) + 1]
            ready = [due for due in booked if due <= now]
            if ready:
                booked.remove(min(ready))
            self._booked[provider] = booked
            return bool(ready)
