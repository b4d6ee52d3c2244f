"""The pacer's shared state in the template's PacingTable: the limit holds across concurrent takers."""

import threading
import time
import uuid

import pytest

from loan_notify.pacing import DynamoSlotStore, Pacer

pytestmark = pytest.mark.flow


class FixedClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider():
    return f"sns-sms@flow-{uuid.uuid4().hex[:8]}"  # a provider of its own: no other test shares its slots


def test_concurrent_senders_never_take_more_than_the_limit_of_a_second(cloud, provider):
    # GIVEN 8 senders, each with its own Pacer and table resource (like separate Lambda instances), at 20/s
    clock = FixedClock(int(time.time()) + 0.25)
    pacers = [Pacer(DynamoSlotStore(cloud.table("PacingTableName")), {"sns-sms": 20}, clock=clock)
              for _ in range(8)]
    granted = []
    lock = threading.Lock()

    def send(pacer: Pacer) -> None:
        for _ in range(12):
            if pacer.acquire(provider, critical=False) == 0.0:
                with lock:
                    granted.append(1)

    # WHEN all of them ask at once, 96 asks within one second
    threads = [threading.Thread(target=send, args=(p,)) for p in pacers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # AND each comes back for the tokens it holds, due later in the second, before the second ends
    clock.now = int(clock.now) + 0.999
    for pacer in pacers:
        while pacer.acquire(provider, critical=False) == 0.0:
            granted.append(1)
    # THEN exactly 20 sends got a token, and the slot item counts them and expires
    slot = int(clock.now)
    item = cloud.table("PacingTableName").get_item(Key={"pk": f"slot#{provider}#{slot}"})["Item"]
    assert len(granted) == 20
    assert item["taken"] == 20
    assert item["expires_at"] > slot  # (moto's CloudFormation ignores the table's TTL: the template test checks it)


def test_a_critical_sender_books_the_next_second_when_this_one_is_full(cloud, provider):
    clock = FixedClock(int(time.time()) + 0.6)
    bulk = Pacer(DynamoSlotStore(cloud.table("PacingTableName")), {"sns-sms": 3}, clock=clock)
    critical = Pacer(DynamoSlotStore(cloud.table("PacingTableName")), {"sns-sms": 3}, clock=clock)
    # GIVEN bulk took this second's 3 tokens (the third is due at two thirds of the second: sends are spread)
    assert [bulk.acquire(provider) for _ in range(3)] == [0.0, 0.0, pytest.approx(0.067, abs=0.002)]
    assert bulk.acquire(provider) > 0
    # WHEN a critical notice asks
    wait = critical.acquire(provider, critical=True)
    # THEN it is told to come back when the next second starts, where its token is waiting for it
    assert 0.4 < wait < 0.45
    clock.now += wait
    assert critical.acquire(provider, critical=True) == 0.0
    # AND bulk has what is left of that second, spread over it (its token of the second before is spent)
    assert [bulk.acquire(provider) for _ in range(3)] == [pytest.approx(1 / 3, abs=0.01),
                                                          pytest.approx(2 / 3, abs=0.01), pytest.approx(1.0, abs=0.01)]


def test_a_throttle_lowers_the_rate_every_sender_reads(cloud, provider):
    clock = FixedClock(time.time())
    first = Pacer(DynamoSlotStore(cloud.table("PacingTableName")), {"sns-sms": 20}, clock=clock)
    second = Pacer(DynamoSlotStore(cloud.table("PacingTableName")), {"sns-sms": 20}, clock=clock)
    # GIVEN the provider throttled one sender's call twice in one burst
    first.throttled(provider)
    first.throttled(provider)
    # THEN every sender paces at 14/s (20 x 0.7, once), and successes a second later raise it a step
    assert second.rate(provider) == pytest.approx(14)
    clock.now += 1.5
    second.succeeded(provider)
    clock.now += 1.0
    assert first.rate(provider) == pytest.approx(14.5)
