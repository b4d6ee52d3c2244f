"""The pacer's shared state in the template's PacingTable: the limit holds across concurrent takers."""

import threading
import time
import uuid

import pytest

from loan_notify.pacing import DynamoPaceStore, Pacer

pytestmark = pytest.mark.flow


class FixedClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider():
    return f"sns-sms@flow-{uuid.uuid4().hex[:8]}"  # a provider of its own: no other test shares its slots


def test_concurrent_senders_never_book_two_sends_closer_than_the_rate_allows(cloud, provider):
    # GIVEN 8 senders, each with its own Pacer and table resource (like separate Lambda instances), at 20/s
    clock = FixedClock(time.time())
    start = clock.now
    pacers = [Pacer(DynamoPaceStore(cloud.table("PacingTableName")), {"sns-sms": 20}, clock=clock)
              for _ in range(8)]
    sent = []
    lock = threading.Lock()

    def send(pacer: Pacer) -> None:
        for _ in range(12):
            if pacer.acquire(provider, critical=False) == 0.0:
                with lock:
                    sent.append(clock.now)

    # WHEN all of them ask at once, 96 asks at one moment
    threads = [threading.Thread(target=send, args=(p,)) for p in pacers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN one sends now, and the others hold the moments booked for the next second, one every 1/20 s
    assert len(sent) == 1
    item = cloud.table("PacingTableName").get_item(Key={"pk": f"next#{provider}"})["Item"]
    assert float(item["at"]) == pytest.approx(start + 20 * 0.05, abs=1e-5)
    assert item["expires_at"] > start  # (moto's CloudFormation ignores the table's TTL: the template test checks it)
    # AND coming back every hundredth of a second for that second, they send 20 in all, each 1/20 s after the last
    while clock.now < start + 0.999:
        clock.now += 0.01
        for pacer in pacers:
            while pacer.acquire(provider, critical=False) == 0.0:
                sent.append(clock.now)
    assert len(sent) == 20
    assert min(b - a for a, b in zip(sent, sent[1:], strict=False)) >= 0.05 - 0.011


def test_a_critical_sender_books_past_the_bulk_horizon(cloud, provider):
    clock = FixedClock(time.time())
    start = clock.now
    bulk = Pacer(DynamoPaceStore(cloud.table("PacingTableName")), {"sns-sms": 3}, clock=clock)
    critical = Pacer(DynamoPaceStore(cloud.table("PacingTableName")), {"sns-sms": 3}, clock=clock)
    # GIVEN bulk booked the next second's 3 moments (now, a third and two thirds of a second on: spread)
    assert [bulk.acquire(provider) for _ in range(3)] == [
        0.0, pytest.approx(0.334, abs=0.002), pytest.approx(0.667, abs=0.002)]
    # AND a fourth bulk ask is told to come back when the next moment is within its second
    assert bulk.acquire(provider) == pytest.approx(0.0, abs=0.11)
    # WHEN a critical notice asks
    wait = critical.acquire(provider, critical=True)
    # THEN it holds the moment a second on, ahead of any later bulk send
    assert wait == pytest.approx(1.0, abs=0.002)
    clock.now = start + wait
    assert critical.acquire(provider, critical=True) == 0.0
    # AND another bulk sender's next moment is the one after it
    other = Pacer(DynamoPaceStore(cloud.table("PacingTableName")), {"sns-sms": 3}, clock=clock)
    assert other.acquire(provider) == pytest.approx(1 / 3, abs=0.002)


class CountingTable:
    """The table resource, counting the writes a store makes."""

    def __init__(self, table) -> None:
        self._table = table
        self.writes = 0

    def update_item(self, **kwargs):
        self.writes += 1
        return self._table.update_item(**kwargs)

    def __getattr__(self, name):
        return getattr(self._table, name)


def test_an_idle_provider_sends_at_once_and_the_pace_starts_again_from_there(cloud, provider):
    clock = FixedClock(time.time())
    table = CountingTable(cloud.table("PacingTableName"))
    pacer = Pacer(DynamoPaceStore(table), {"sns-sms": 2}, clock=clock)
    assert pacer.acquire(provider) == 0.0
    # WHEN the provider was idle for a minute (its next free moment long past)
    clock.now += 60
    # THEN the next send goes at once (no credit piled up: the one after it is half a second later)
    assert pacer.acquire(provider) == 0.0
    assert pacer.acquire(provider) == pytest.approx(0.5, abs=0.002)
    # AND each send cost one write: the two after the first are known idle, the third books ahead
    assert table.writes == 3
    # AND a critical sender of another process, which has seen nothing yet, tries the idle write first (refused)
    # and then books the moment after
    other = CountingTable(cloud.table("PacingTableName"))
    critical = Pacer(DynamoPaceStore(other), {"sns-sms": 2}, clock=clock)
    assert critical.acquire(provider, critical=True) == pytest.approx(1.0, abs=0.002)
    assert other.writes == 2
    item = cloud.table("PacingTableName").get_item(Key={"pk": f"next#{provider}"})["Item"]
    assert float(item["at"]) == pytest.approx(clock.now + 1.5, abs=1e-5)


def test_a_throttle_lowers_the_rate_every_sender_reads(cloud, provider):
    clock = FixedClock(time.time())
    first = Pacer(DynamoPaceStore(cloud.table("PacingTableName")), {"sns-sms": 20}, clock=clock)
    second = Pacer(DynamoPaceStore(cloud.table("PacingTableName")), {"sns-sms": 20}, clock=clock)
    # GIVEN the provider throttled one sender's call twice in one burst
    first.throttled(provider)
    first.throttled(provider)
    # THEN every sender paces at 14/s (20 x 0.7, once), and successes a hold later raise it a step (2/s: far below
    # the rate throttled, 20)
    assert second.rate(provider) == pytest.approx(14)
    assert second.interval(provider) == pytest.approx(1 / 14, abs=1e-6)
    clock.now += 3.5
    second.succeeded(provider)
    clock.now += 1.0
    assert first.rate(provider) == pytest.approx(16)
    item = cloud.table("PacingTableName").get_item(Key={"pk": f"rate#{provider}"})["Item"]
    assert float(item["ceiling"]) == 20
