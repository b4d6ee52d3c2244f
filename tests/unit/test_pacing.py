"""The pacer: shared per-provider send rate, AIMD on throttles, critical notices first (simulated clock)."""

import heapq
import random
import threading

import pytest

from loan_notify.pacing import MemoryPaceStore, Pacer
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
    return MemoryPaceStore()


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


def test_no_two_sends_are_closer_than_the_rate_allows_when_many_processes_take_at_once(store, clock):
    # GIVEN 12 senders, each with its own Pacer (like separate Lambda instances) over one shared store
    pacers = [Pacer(store, RATES, clock=clock) for _ in range(12)]
    sent: list[float] = []
    lock = threading.Lock()

    def hammer(pacer: Pacer) -> None:
        for _ in range(3):
            if pacer.acquire(SMS, critical=False) == 0.0:
                with lock:
                    sent.append(clock.now)

    # WHEN, for 5 seconds, all of them ask 3 times each at once at every hundredth of a second (3,600 asks a second
    # for 20 tokens)
    start = clock.now
    for step in range(500):
        clock.now = start + step / 100
        threads = [threading.Thread(target=hammer, args=(p,)) for p in pacers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # THEN 20 went out in every second, never more, and no two sends came closer than 1/20 s (spread, not bunched)
    per_second: dict[int, int] = {}
    for t in sent:
        per_second[int(t - start)] = per_second.get(int(t - start), 0) + 1
    assert per_second == {s: 20 for s in range(5)}
    gaps = [b - a for a, b in zip(sorted(sent), sorted(sent)[1:], strict=False)]
    assert min(gaps) >= 0.05 - 1e-6
    # AND the store's next free moment moved on by one interval per token: the 100 sent and the 20 the senders hold
    # for the next second (bulk books at most a second ahead)
    assert store.next_free(SMS) == pytest.approx(start + 120 * 0.05, abs=1e-6)


def test_bulk_uses_the_full_rate_when_no_critical_notice_waits(store, clock):
    # GIVEN 5 bulk senders with an endless backlog and a 14/s email quota
    start = clock.now
    pacers = [(Pacer(store, {"sns-sms": 14}, clock=clock), False) for _ in range(5)]
    # WHEN they send for 60 seconds
    sent = drive(pacers, clock, until=start + 60, wants=lambda i, now: True)
    # THEN they sent at the full rate, 14 in every second (1/14 s apart: a second holds 13 or 14 of them)
    times = sorted(t for times in sent for t in times)
    per_second: dict[int, int] = {}
    for t in times:
        per_second[int(t - start)] = per_second.get(int(t - start), 0) + 1
    assert 14 * 60 - 1 <= len(times) <= 14 * 60
    assert set(per_second.values()) <= {13, 14}
    assert min(b - a for a, b in zip(times, times[1:], strict=False)) >= 1 / 14 - 1e-6


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
    # THEN each critical notice was sent within about a second (bulk books a second ahead), and the rate held in
    # every second
    assert len(latencies) == 6
    assert max(latencies) <= 1.0 + 0.05 + 0.05
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
    # AND a throttle in a later burst lowers it again, and moves the ceiling halfway to the rate throttled
    clock.now += 3.0
    second.throttled(SMS)
    assert second.rate(SMS) == pytest.approx(9.8)
    assert store.get_rate(SMS).ceiling == pytest.approx(17)
    # WHEN sends succeed for the next 8 minutes, both processes reporting every second
    seen = []
    for _ in range(480):
        clock.now += 1.0
        first.succeeded(SMS)
        second.succeeded(SMS)
        seen.append(first.rate(SMS))
    # THEN the rate climbs a tenth of the configured rate per 3 seconds up to 85% of the ceiling, then half a percent
    # of the ceiling per 3 seconds up to and past it, then quickly again to the configuration, never above it
    steps = sorted(set(seen))
    assert steps[:4] == pytest.approx([9.8, 11.8, 13.8, 14.45])
    slow = [b - a for a, b in zip(steps, steps[1:], strict=False) if 14.45 - 1e-9 <= a < 18.7 - 0.085]
    assert len(slow) >= 40 and all(d == pytest.approx(0.085) for d in slow)
    assert seen[-1] == 20
    assert max(seen) == 20


@pytest.mark.parametrize(("real", "jitter", "stalls"), [(15, 0.05, 0), (1, 0.05, 0), (1, 0.25, 0), (2, 0.25, 0),
                                                       (1, 0.05, 0.03)])
def test_aimd_keeps_throttles_rare_when_the_real_quota_is_below_the_configured_rate(store, clock, real, jitter,
                                                                                    stalls):
    # GIVEN a provider configured at 20/s (2/s for a real quota of 1 or 2) whose real quota is lower: a token
    # bucket with one second of burst, so at 1/s it has no slack at all
    configured = 20 if real > 2 else 2
    start = clock.now
    rng = random.Random(3)
    pacers = [Pacer(store, {"sns-sms": configured}, clock=clock, rng=random.Random(i)) for i in range(5)]
    bucket = {"tokens": float(real), "at": start}
    throttles = 0
    sends = 0
    events = [(start, i, None) for i in range(5)]
    # WHEN 5 senders drain a backlog for 20 minutes, requeueing a throttled send; each send reaches the provider a
    # varying time after its token (its reads and writes: up to `jitter` seconds), and a share of them (`stalls`)
    # half a second to a second late (a busy host); a sender late for a token it held gives it up, as send() does
    while events:
        at, i, due = heapq.heappop(events)
        if at >= start + 1200:
            continue
        clock.now = at
        if due is None:
            reservation = pacers[i].reserve(SMS, critical=False)
            if reservation.wait:
                heapq.heappush(events, (at + reservation.wait, i, None))
                continue
            late = rng.uniform(0, jitter) + (rng.uniform(0.5, 1.0) if rng.random() < stalls else 0.0)
            heapq.heappush(events, (at + late, i, reservation.due))
            continue
        if not pacers[i].on_time(SMS, due):
            heapq.heappush(events, (at, i, None))
            continue
        bucket["tokens"] = min(float(real), bucket["tokens"] + (at - bucket["at"]) * real)
        bucket["at"] = at
        if bucket["tokens"] >= 1:
            bucket["tokens"] -= 1
            sends += 1
            pacers[i].succeeded(SMS)
        else:
            throttles += 1
            pacers[i].throttled(SMS)
        heapq.heappush(events, (at + 0.05, i, None))
    # THEN throttled calls stay under 5% of sends and most of the real quota is used
    assert throttles / sends < 0.05
    assert sends >= 0.75 * real * 1200


def test_fractional_rates_are_spread_evenly(store, clock):
    # GIVEN one sender at 1.5/s and one at 0.4/s with endless backlogs
    start = clock.now
    for rate, provider in ((1.5, SMS), (0.4, "ses-v2@us-east-1")):
        pacer = Pacer(store, {provider: rate}, clock=clock)
        clock.now = start
        sent = []
        while clock.now < start + 60:
            wait = pacer.acquire(provider)
            if wait == 0.0:
                sent.append(clock.now)
                wait = 0.01
            clock.now += wait
        # THEN every two sends are 1/rate apart (not bunched at the start of a second), and the rate holds
        gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
        assert min(gaps) >= 1 / rate - 1e-6
        assert max(gaps) <= 1 / rate + 0.002
        assert len(sent) == int(60 * rate)


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


def test_a_send_reads_the_shared_rate_once_and_its_success_raises_from_what_it_read(store, clock):
    pacer, other = Pacer(store, RATES, clock=clock), Pacer(store, RATES, clock=clock)
    # GIVEN sends a few seconds apart, each taking longer than the rate's cache time (a slow provider call, or a
    # compressed clock): each send's success uses the rate its token read
    for _ in range(3):
        clock.now += 5.0
        assert pacer.reserve(SMS).wait == 0.0
        clock.now += 2.0
        pacer.succeeded(SMS)
    assert store.rate_reads == 3
    # AND a success with no token taken by this thread reads it
    clock.now += 5.0
    pacer.succeeded(SMS)
    assert store.rate_reads == 4
    # WHEN the rate was lowered and another process changes it between a token and its success
    pacer.throttled(SMS)
    clock.now += 5.0
    assert pacer.reserve(SMS).wait == 0.0
    clock.now += 5.0
    other.succeeded(SMS)  # raises it a step (version 2)
    raised = store.get_rate(SMS)
    pacer.succeeded(SMS)  # raises from the version its token saw: refused, nothing overwritten
    assert store.get_rate(SMS) == raised
    # THEN the next send reads the rate again, and its success raises from there
    clock.now += 5.0
    assert pacer.reserve(SMS).wait == 0.0
    pacer.succeeded(SMS)
    assert store.get_rate(SMS).version == raised.version + 1
