"""Provider pacing: one shared send rate per provider, taken a token at a time, critical notices first.

Every sender (any number of consumer Lambdas) asks the Pacer before it calls a provider. The shared state lives
in a PaceStore:

- one "next free moment" per provider (the generic cell rate algorithm). A send takes the moment with one
  conditional write that moves it on by 1/rate, so across all processes no two sends are booked less than
  1/rate apart, at any rate, fractional ones included. A sender that took a moment still ahead waits until it
  comes. A provider's own limit is a token bucket about a second deep: evenly spaced sends leave it room for a
  moment's jitter, where sends bunched at the start of each second would not (at a quota of 1/s it has no room at
  all, and the adaptive rate below settles just under the quota);
- one rate item per provider: the adaptive rate (AIMD). A throttle multiplies it down (once per burst) and
  moves the remembered rate throttled (the ceiling) halfway to it. Successes add it back a step every few seconds:
  quickly while far below the ceiling, slowly near it, never above the configured rate. Written with optimistic
  concurrency.

A sender holding a token waits for its moment and calls the provider then; one held up past it (a slow write, a
busy host) by more than the provider's slack gives the token up and takes a new one, rather than crowd the next.

Critical first, by booking ahead: bulk takes only moments due within `bulk_ahead_s` (a second), a critical sender
up to `critical_ahead_s` (five seconds) ahead. Bulk therefore uses the full rate when no critical notice waits, and
a critical notice never waits more than about a second behind any bulk backlog (as long as critical demand itself
stays under the rate).

Plain Python, ports passed in (the store, the clock), so the Lambdas, the unit tests and the scale model
(loadtools.scale_model, on a simulated clock) run this same code.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from botocore.exceptions import ClientError

from loan_notify.errors import conditional_check_failed

Seconds = Callable[[], float]  # wall-clock epoch seconds: moments are compared across processes

UNPACED = 0.0  # acquire's answer for a provider with no configured rate (the app inbox)
_PAST = 0.001  # a wait ends just past the moment, so floating point cannot land it just before
_SAME = 1e-5  # rates closer than this are the same rate (the store keeps six decimals)


@dataclass(frozen=True)
class RateState:
    """The adaptive rate of one provider, shared by every sender."""

    rate: float  # sends per second allowed now
    version: int  # optimistic concurrency: a write expects the version it read
    changed_at: float  # when the rate last changed (epoch seconds)
    decreased: bool  # the last change was a decrease (a throttle)
    ceiling: float = 0.0  # the rate the provider last throttled at (0: never)


@dataclass(frozen=True)
class Reservation:
    """A sender's answer from the pacer: send now (wait 0), a token held for this process and due in `wait`
    seconds (held), or nothing in reach yet: ask again in `wait` seconds."""

    wait: float
    held: bool = False
    due: float | None = None  # the moment of the token taken or held (the pacer's clock)


@dataclass(frozen=True)
class Taken:
    """A store's answer to take(): the booked moment (None: none before the horizon) and the next free one."""

    due: float | None
    next_free: float


class PaceStore(Protocol):
    def take(self, provider: str, now: float, interval: float, horizon: float, *, idle: bool = False) -> Taken:
        """Atomically book the provider's next free moment if it is before horizon: a moment in the past counts as
        now. The booked moment (>= now) moves the next free one on by interval. `idle`: the caller believes the
        moment is in the past (a hint that saves a write when true)."""
        ...

    def get_rate(self, provider: str) -> RateState | None: ...

    def put_rate(self, provider: str, state: RateState, *, expected_version: int) -> bool:
        """Write state if the stored version is expected_version (0: no item yet); False if someone wrote first."""
        ...


class MemoryPaceStore:
    """Thread-safe in-process store: unit tests, and the scale model on its simulated clock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._rates: dict[str, RateState] = {}
        self.takes = 0  # writes, as the DynamoDB store would make them (a refused or stale take costs one more)
        self.rate_reads = 0
        self.rate_writes = 0

    def take(self, provider: str, now: float, interval: float, horizon: float, *, idle: bool = False) -> Taken:
        with self._lock:
            at = self._next.get(provider)
            stale = at is None or at < now
            # as many writes as the DynamoDB store makes: one that books, plus one refused when the hint was wrong
            # (idle, but booked ahead) or missing (not idle, but the moment was in the past)
            self.takes += 1 + (idle != stale)
            at = now if stale else at
            if at >= horizon:
                return Taken(None, at)
            self._next[provider] = at + interval
            return Taken(at, at + interval)

    def next_free(self, provider: str) -> float | None:
        with self._lock:
            return self._next.get(provider)

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


class DynamoPaceStore:
    """The shared store in DynamoDB (the PacingTable; a boto3 Table resource is passed in).

    Items, key `pk` (S), expiring through the TTL attribute `expires_at`:
    - `next#<provider>`: `at` (N), the provider's next free send moment (epoch seconds, to the microsecond);
    - `rate#<provider>`: `rate` (N), `version` (N), `changed_at` (N), `decreased` (BOOL), `ceiling` (N).

    A take is one conditional `SET at = at + :interval` while the moment is between now and the horizon. When it
    is not, the refused write returns the stored moment (ReturnValuesOnConditionCheckFailure): at or past the
    horizon, the caller is told when it frees; in the past (the provider was idle), a second conditional write
    books now. A caller that expects the provider idle (the last moment it saw is past) tries that write first,
    so an idle provider costs one write per send too.
    """

    def __init__(self, table: Any, *, ttl_s: int = 3_600, rate_ttl_s: int = 86_400) -> None:
        self._table = table
        self._ttl = ttl_s
        self._rate_ttl = rate_ttl_s

    def take(self, provider: str, now: float, interval: float, horizon: float, *, idle: bool = False) -> Taken:
        key = {"pk": f"next#{provider}"}
        # Every moment is `now` rounded once plus whole steps, in Decimal: at epoch magnitudes a float is only good to
        # a few tenths of a microsecond, and rounding now + 1.0 apart from now + 0.05 could let a moment equal to the
        # horizon pass as before it.
        now_d, step = _decimal(now), _decimal(interval)
        horizon_d = now_d + _decimal(horizon - now)
        if idle and self._restart(key, now_d, step, int(now)):
            return Taken(now, now + interval)
        for _ in range(3):
            try:
                answer = self._table.update_item(
                    Key=key, UpdateExpression="SET #at = #at + :step, #expires = :expires",
                    ConditionExpression="#at >= :now AND #at < :horizon", ExpressionAttributeNames=_NAMES,
                    ExpressionAttributeValues={":step": step, ":now": now_d, ":horizon": horizon_d,
                                               ":expires": int(now) + self._ttl},
                    ReturnValues="UPDATED_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")
                free = float(answer["Attributes"]["at"])
                return Taken(free - float(step), free)
            except ClientError as err:
                if not conditional_check_failed(err):
                    raise
                stored = err.response.get("Item", {}).get("at")
                at = float(stored["N"]) if isinstance(stored, dict) else None
            if at is not None and at >= now:
                return Taken(None, at)  # booked up to the horizon (or someone moved it on since: the caller asks again)
            if self._restart(key, now_d, step, int(now)):
                return Taken(now, now + interval)
        return Taken(None, now + interval)

    def _restart(self, key: dict[str, str], now: Decimal, step: Decimal, second: int) -> bool:
        """The provider was idle (its moment is in the past, or there is none yet): book now. False when someone
        else booked since."""
        try:
            self._table.update_item(
                Key=key, UpdateExpression="SET #at = :next, #expires = :expires",
                ConditionExpression="attribute_not_exists(#at) OR #at < :now", ExpressionAttributeNames=_NAMES,
                ExpressionAttributeValues={":next": now + step, ":now": now, ":expires": second + self._ttl})
        except ClientError as err:
            if conditional_check_failed(err):
                return False
            raise
        return True

    def get_rate(self, provider: str) -> RateState | None:
        item = self._table.get_item(Key={"pk": f"rate#{provider}"}, ConsistentRead=True).get("Item")
        if not item:
            return None
        return RateState(rate=float(item["rate"]), version=int(item["version"]),
                         changed_at=float(item["changed_at"]), decreased=bool(item["decreased"]),
                         ceiling=float(item.get("ceiling", 0)))

    def put_rate(self, provider: str, state: RateState, *, expected_version: int) -> bool:
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"} if expected_version == 0 else
            {"ConditionExpression": "#version = :expected", "ExpressionAttributeNames": {"#version": "version"},
             "ExpressionAttributeValues": {":expected": expected_version}})
        try:
            self._table.put_item(Item={
                "pk": f"rate#{provider}", "rate": _decimal(state.rate), "version": state.version,
                "changed_at": _decimal(state.changed_at), "decreased": state.decreased,
                "ceiling": _decimal(state.ceiling), "expires_at": int(state.changed_at) + self._rate_ttl}, **condition)
        except ClientError as err:
            if conditional_check_failed(err):
                return False
            raise
        return True


_NAMES = {"#at": "at", "#expires": "expires_at"}


def _interval(rate: float) -> float:
    """Seconds between two sends at `rate`, rounded up to the microsecond the store keeps."""
    return math.ceil(1_000_000 / rate) / 1_000_000


def _decimal(value: float) -> Decimal:
    return Decimal(str(round(value, 6)))


class Pacer:
    """Send tokens per provider at an adaptive shared rate, critical notices first.

    rates: configured sends per second, keyed by provider ("sns-sms@us-east-1") or by its kind ("sns-sms", every
    region). A provider with neither (the app inbox) is not paced.
    """

    def __init__(self, store: PaceStore, rates: Mapping[str, float], *, clock: Seconds = time.time,
                 decrease: float = 0.7, increase: float = 0.1, near_increase: float = 0.005,
                 min_rate: float = 0.1, hold_s: float = 3.0, cache_s: float = 1.0, bulk_ahead_s: float = 1.0,
                 critical_ahead_s: float = 5.0, grace_s: float = 1.0, late_s: float = 0.25,
                 rng: random.Random | None = None) -> None:
        self._store = store
        self._rates = dict(rates)
        self._clock = clock
        self._decrease = decrease  # multiplicative decrease on a throttle
        # additive increase per hold_s of successes (globally), as a share of the configured rate; near the ceiling
        # (the rate last throttled) as a share of the ceiling
        self._increase = increase
        self._near_increase = near_increase
        self._min_rate = min_rate
        self._hold = hold_s  # throttles within this long after a decrease belong to the same burst
        self._cache_s = cache_s
        self._bulk_ahead = bulk_ahead_s
        self._critical_ahead = critical_ahead_s
        self._grace = grace_s  # a held token not used this long after its moment is given up
        self._late_s = late_s  # a send this late for its token (at least) gives it up (on_time)
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, RateState | None]] = {}
        self._free: dict[str, float] = {}  # provider -> its next free moment, as this process last learned it
        self._booked: dict[str, list[float]] = {}  # provider -> the moments of the tokens this process holds
        # The shared rate this thread's last reserve read to pace its send: `succeeded` takes it instead of asking
        # the store again for that send (a raise is conditional on the version it saw, so a rate changed meanwhile
        # only costs that raise). Not carried past the thread's next reserve.
        self._paced = threading.local()

    def configured(self, provider: str) -> float | None:
        return self._rates.get(provider, self._rates.get(provider.partition("@")[0]))

    def rate(self, provider: str) -> float:
        """The shared rate now (read at most once per cache_s by this process)."""
        configured = self.configured(provider)
        if configured is None:
            return math.inf
        return self._shared(configured, self._state(provider))

    def _shared(self, configured: float, state: RateState | None) -> float:
        return configured if state is None else min(configured, max(self._min_rate, state.rate))

    def interval(self, provider: str) -> float:
        """Seconds between two sends at the shared rate."""
        return _interval(self.rate(provider))

    def acquire(self, provider: str, *, critical: bool = False) -> float:
        """0.0: a token is taken, send now. Otherwise no token yet: ask again after that many seconds."""
        return self.reserve(provider, critical=critical).wait

    def reserve(self, provider: str, *, critical: bool = False) -> Reservation:
        """A send token: now, held for this process until its moment, or out of reach yet.

        One conditional write in the usual case. A token due a little later is held for this process, and the
        sender is told to come back when it is due (a sender may do its reads meanwhile: `due_in` says how long is
        left). When the provider is booked further ahead than a sender may take (a second for bulk, five for
        critical), the sender is told when a moment will be in reach; this process does not ask the store again
        before then.
        """
        configured = self.configured(provider)
        if configured is None:
            return Reservation(UNPACED)
        self._paced.seen = None
        now = self._clock()
        used = self._use_booking(provider, now)
        if used is not None:
            return Reservation(0.0, due=used)
        ahead = self._critical_ahead if critical else self._bulk_ahead
        with self._lock:
            known = self._free.get(provider)
        if known is not None and known - ahead > now:
            return Reservation(self._come_back(known - ahead - now))
        # idle as far as this process knows: the last moment it saw passed over a second ago (under a backlog the
        # next free moment stays about a second ahead)
        state = self._state(provider)
        self._paced.seen = (provider, state)
        taken = self._store.take(provider, now, _interval(self._shared(configured, state)), now + ahead,
                                 idle=known is None or known < now - self._bulk_ahead)
        with self._lock:
            self._free[provider] = max(taken.next_free, self._free.get(provider, 0.0))
        if taken.due is None:
            return Reservation(self._come_back(max(0.0, taken.next_free - ahead - now)))
        if taken.due <= now:
            return Reservation(0.0, due=taken.due)
        with self._lock:
            self._booked.setdefault(provider, []).append(taken.due)
        return Reservation(taken.due - now + _PAST, held=True, due=taken.due)

    def on_time(self, provider: str, due: float) -> bool:
        """Is a send that leaves now still on time for the token due at `due`?

        A send late for its token leaves less than 1/rate before the next one, which is on time: at a quota with no
        slack (one send a second) that next send is throttled, and the adaptive rate would then come down for a
        stall, not for the quota. Lateness the adaptive rate can absorb (a quarter of a second, a tenth of the
        interval, or the provider's burst allowance at this rate: a second's worth less one send, 0.95 s at 20/s,
        whichever is most) is on time; a stall past it is not.
        """
        interval = self.interval(provider)
        return self._clock() - due <= max(self._late_s, 0.1 * interval, 1.0 - interval)

    def due_in(self, provider: str) -> float | None:
        """Seconds until the earliest token this process holds for the provider is due (0 or less: due now);
        None when it holds none (given up past its grace, or used)."""
        now = self._clock()
        with self._lock:
            booked = [due for due in self._booked.get(provider, []) if now < due + self._grace]
        return min(booked) - now + _PAST if booked else None

    def _come_back(self, seconds: float) -> float:
        """Senders of many processes that learned the same moment come back spread over a tenth of a second, not all
        at once (each refused take is a write)."""
        return seconds + _PAST + self._rng.uniform(0, 0.1)

    def throttled(self, provider: str) -> None:
        """The provider throttled a send: lower the shared rate (once per burst) and move the ceiling halfway to the
        rate throttled. The caller puts the send back.

        Halfway, not all the way: a send that reached the provider late (a slow read, a busy host) can be throttled
        well under the quota, and a ceiling set by it would hold the rate down for minutes; throttles at the real
        limit keep pulling the ceiling to it."""
        configured = self.configured(provider)
        if configured is None:
            return
        for _ in range(3):
            now = self._clock()
            state = self._store.get_rate(provider)
            if state is not None and state.decreased and now - state.changed_at < self._hold:
                self._remember(provider, now, state)
                return  # this burst already lowered the rate
            current = configured if state is None else min(configured, max(self._min_rate, state.rate))
            ceiling = (state.ceiling + current) / 2 if state is not None and state.ceiling else current
            new = RateState(max(self._min_rate, current * self._decrease), (state.version if state else 0) + 1,
                            now, decreased=True, ceiling=ceiling)
            if self._store.put_rate(provider, new, expected_version=state.version if state else 0):
                self._remember(provider, now, new)
                return

    def succeeded(self, provider: str) -> None:
        """The provider accepted a send: raise the shared rate a step (at most once per hold_s, globally).

        The step is a tenth of the configured rate while the rate is far from the ceiling (under 85% of it, or past
        it by a tenth), and half a percent of the ceiling near it: the rate that was throttled is approached slowly,
        so a quota the configuration overstates costs a throttle now and then, not every few seconds.
        """
        configured = self.configured(provider)
        if configured is None:
            return
        seen, self._paced.seen = getattr(self._paced, "seen", None), None
        state = seen[1] if seen is not None and seen[0] == provider else self._state(provider)
        now = self._clock()
        if state is None or state.rate >= configured or now - state.changed_at < self._hold:
            return
        ceiling = state.ceiling
        near = 0.85 * ceiling - _SAME  # the stored rate is rounded: at the edge it may be a hair under
        if ceiling and near <= state.rate < 1.1 * ceiling:
            raised = state.rate + ceiling * self._near_increase
        else:
            raised = state.rate + configured * self._increase
            if ceiling and state.rate < near:
                raised = min(raised, 0.85 * ceiling)
        new = RateState(min(configured, raised), state.version + 1, now, decreased=False,
                        ceiling=state.ceiling)
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

    def _use_booking(self, provider: str, now: float) -> float | None:
        """Use a held token whose moment came: its moment, or None. A token is good for grace_s after its moment:
        one not used by then is given up (sending it later would put two sends closer together than the rate
        allows)."""
        with self._lock:
            booked = [due for due in self._booked.get(provider, []) if now < due + self._grace]
            ready = [due for due in booked if due <= now]
            if ready:
                booked.remove(min(ready))
            self._booked[provider] = booked
            return min(ready) if ready else None
