"""The pacer: shared per-provider send rate, AIMD on throttles, critical notices first (simulated clock)."""

import heapq
import threading

import pytest

from loan_notify.pacing import MemorySlotStore, Pacer, slot_limit
from localcloud.deploy import load_sam
from tests.unit.conftest import ROOT

SMS = "sns-sms@us-east-1"
RATES = {"sns-sms": 20, "ses-v2": 14, "sns-push": 50}


class SimClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return SimClock()


@pytest.fixture
def store():
    return MemorySlotStore()


def drive(pacers, clock, *, until, wants, on_sent=lambda i, at: None):
    """Each (pacer, critical) sender asks, waits as told, and sends whenever it holds a token.

    wants(sender_index, now) -> bool says whether the sender has a notice to send now. Returns the send times
    per sender. A send takes 50 ms, like a provider call.
    """
    sent = [[] for _ in pacers]
    events = [(clock.now, i) for i in range(len(pacers))]
    while events:
        at, i = heapq.heappop(events)
        if at >= until:
            continue
        clock.now = at
        pacer, critical = pacers[i]
        if not wants(i, at):
            heapq.heappush(events, (at + 0.05, i))
            continue
        wait = pacer.acquire(SMS, critical=critical)
        if wait == 0.0:
            sent[i].append(at)
            on_sent(i, at)
            pacer.succeeded(SMS)
            heapq.heappush(events, (at + 0.05, i))
        else:
            heapq.heappush(events, (at + wait, i))
    return sent


def test_no_slot_holds_more_than_its_limit_when_many_processes_take_at_once(store, clock):
    # GIVEN 12 senders, each with its own Pacer (like separate Lambda instances) over one shared store
    pacers = [Pacer(store, RATES, clock=clock) for _ in range(12)]
    granted: dict[tuple[int, int], int] = {}
    lock = threading.Lock()

    def hammer(pacer: Pacer, slot: int, step: int) -> None:
        for _ in range(3):
            if pacer.acquire(SMS, critical=False) == 0.0:
                with lock:
                    granted[slot, step] = granted.get((slot, step), 0) + 1

    # WHEN, for 5 seconds, all of them ask 3 times each at once at every twentieth of a second (720 asks a second
    # for 20 tokens)
    for slot in range(1_000_000, 1_000_005):
        for step in range(20):
            clock.now = slot + step / 20 + 0.001
            threads = [threading.Thread(target=hammer, args=(p, slot, step)) for p in pacers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    # THEN every second sent exactly its limit, never more, one send in each twentieth of it (spread, not bunched)
    per_second: dict[int, int] = {}
    for (slot, _step), count in granted.items():
        per_second[slot] = per_second.get(slot, 0) + count
    assert per_second == {slot: 20 for slot in range(1_000_000, 1_000_005)}
    assert set(granted.values()) == {1} and len(granted) == 100
    assert all(store.taken(SMS, slot) == 20 for slot in per_second)


def test_bulk_uses_the_full_rate_when_no_critical_notice_waits(store, clock):
    # GIVEN 5 bulk senders with an endless backlog and a 14/s email quota
    start = clock.now
    pacers = [(Pacer(store, {"sns-sms": 14}, clock=clock), False) for _ in range(5)]
    # WHEN they send for 60 seconds
    sent = drive(pacers, clock, until=start + 60, wants=lambda i, now: True)
    # THEN they sent at the full rate, 14 in every second
    per_second: dict[int, int] = {}
    for t in (t for times in sent for t in times):
        per_second[int(t)] = per_second.get(int(t), 0) + 1
    assert sum(per_second.values()) == 14 * 60
    assert set(per_second.values()) == {14}


def test_critical_gets_a_token_within_a_second_behind_a_bulk_backlog(store, clock):
    # GIVEN 25 bulk senders, more than a second's tokens, all asking the moment a second starts; one critical sender
    start = clock.now
    pacers = [(Pacer(store, RATES, clock=clock), False) for _ in range(25)]
    critical = Pacer(store, RATES, clock=clock)
    pacers.append((critical, True))
    arrivals = [start + 10.3 + 7.9 * k for k in range(6)]  # six critical notices during the backlog
    waiting = list(arrivals)
    latencies = []

    def critical_sent(i, at):
        if i == 25:
            latencies.append(at - waiting.pop(0))

    # WHEN the critical notices arrive while bulk keeps every slot full
    sent = drive(pacers, clock, until=start + 60, on_sent=critical_sent,
                 wants=lambda i, now: i < 25 or bool(waiting and waiting[0] <= now))
    # THEN each critical notice was sent within about a second, and the rate held in every second
    assert len(latencies) == 6
    assert max(latencies) <= 1.05
    per_second: dict[int, int] = {}
    for t in (t for times in sent for t in times):
        per_second[int(t)] = per_second.get(int(t), 0) + 1
    assert max(per_second.values()) <= 20


def test_a_throttle_lowers_the_shared_rate_once_per_burst_and_successes_raise_it_back(store, clock):
    # GIVEN two processes sending SMS at the configured 20/s
    first, second = Pacer(store, RATES, clock=clock), Pacer(store, RATES, clock=clock)
    assert first.rate(SMS) == second.rate(SMS) == 20
    # WHEN the provider throttles three sends of the same burst
    for _ in range(3):
        first.throttled(SMS)
    # THEN the rate is multiplied down once, and the other process sees it within its cache time
    assert first.rate(SMS) == pytest.approx(14)
    clock.now += 1.0
    assert second.rate(SMS) == pytest.approx(14)
    # AND a throttle in a later burst lowers it again
    second.throttled(SMS)
    assert second.rate(SMS) == pytest.approx(9.8)
    # WHEN sends succeed for the next 30 seconds
    seen = []
    for _ in range(30):
        clock.now += 1.0
        first.succeeded(SMS)
        second.succeeded(SMS)
        seen.append(first.rate(SMS))
    # THEN the rate climbs back a step (0.5/s) per second, whichever process reports, never above the configuration
    assert seen[:3] == pytest.approx([10.3, 10.8, 11.3])
    assert seen[-1] == 20
    assert max(seen) == 20


def test_aimd_keeps_throttles_rare_when_the_real_quota_is_below_the_configured_rate(store, clock):
    # GIVEN a provider configured at 20/s whose real quota is 15/s (a token bucket, 1 second of burst)
    start = clock.now
    pacers = [Pacer(store, RATES, clock=clock) for _ in range(5)]
    bucket = {"tokens": 15.0, "at": start}
    throttles = 0
    sends = 0
    events = [(start, i) for i in range(5)]
    # WHEN 5 senders drain a backlog for 5 minutes, requeueing a throttled send
    while events:
        at, i = heapq.heappop(events)
        if at >= start + 300:
            continue
        clock.now = at
        wait = pacers[i].acquire(SMS, critical=False)
        if wait:
            heapq.heappush(events, (at + wait, i))
            continue
        bucket["tokens"] = min(15.0, bucket["tokens"] + (at - bucket["at"]) * 15)
        bucket["at"] = at
        if bucket["tokens"] >= 1:
            bucket["tokens"] -= 1
            sends += 1
            pacers[i].succeeded(SMS)
        else:
            throttles += 1
            pacers[i].throttled(SMS)
        heapq.heappush(events, (at + 0.05, i))
    # THEN throttled calls stay under 5% of sends and most of the real quota is used
    assert throttles / sends < 0.05
    assert sends >= 0.8 * 15 * 300


def test_fractional_rates_spread_over_consecutive_seconds():
    assert sum(slot_limit(14.5, s) for s in range(100, 110)) == 145
    assert {slot_limit(14.5, s) for s in range(100, 110)} == {14, 15}
    assert sum(slot_limit(0.5, s) for s in range(10)) == 5


def test_the_app_inbox_is_not_paced_and_every_region_of_a_kind_has_the_kind_rate(store, clock):
    pacer = Pacer(store, RATES, clock=clock)
    assert pacer.acquire("app-inbox", critical=False) == 0.0
    assert store.takes == 0
    assert pacer.rate("ses-v2@us-west-2") == 14
    assert Pacer(store, {**RATES, "sns-sms@us-west-2": 5}, clock=clock).rate("sns-sms@us-west-2") == 5


def test_the_pacing_table_is_keyed_by_pk_and_expires_its_items():
    table = load_sam(ROOT / "template.yaml")["Resources"]["PacingTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
