"""Stream delivery semantics of the local cloud's event source mapping (no moto backends involved)."""

import json
import threading
from types import SimpleNamespace

from localcloud.streams import MappingPoller
from tests.unit.images import loan_image, stream_record


def _esm(**overrides):
    values = dict(batch_size=10, max_retry_attempts=2, function_response_types=["ReportBatchItemFailures"],
                  destination_config={"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:1:dlq"}},
                  filter_criteria=None, bisect_on_error=False, max_batch_window=None, enabled=True,
                  max_record_age=None, event_source_arn="arn:aws:dynamodb:us-east-1:1:table/L/stream/x",
                  function_arn="arn:aws:lambda:us-east-1:1:function:router")
    values.update(overrides)
    return SimpleNamespace(**values)


class Harness:
    def __init__(self, esm, behaviour):
        self.calls, self.dead_letters, self.lock = [], [], threading.Lock()
        self.behaviour = behaviour
        self.poller = MappingPoller(esm, "router", "us-east-1", self.invoke, self.send, time_scale=0)

    def invoke(self, name, event):
        sequences = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        with self.lock:
            self.calls.append(sequences)
        return self.behaviour(sequences)

    def send(self, arn, body):
        self.dead_letters.append((arn, json.loads(body)))

    def run(self, records):
        # Hold the poller until every record is queued, so batching is deterministic.
        with self.poller._cond:
            for record in records:
                self.poller.enqueue(record)
        deadline = 100
        while not self.poller.idle() and deadline:
            threading.Event().wait(0.01)
            deadline -= 1
        self.poller.stop()
        return self


def _ok(_):
    return json.dumps({"batchItemFailures": []}), False, ""


def _records(n):
    return [stream_record(loan_image(f"L-{i}"), sequence=1000 + i) for i in range(n)]


def test_batches_respect_batch_size_and_order():
    h = Harness(_esm(batch_size=4), _ok).run(_records(10))
    assert [len(c) for c in h.calls] == [4, 4, 2]
    assert sum(h.calls, []) == [str(1000 + i) for i in range(10)]


def test_filter_criteria_drop_records_before_batching():
    pattern = json.dumps({"dynamodb": {"NewImage": {"status": {"S": ["REJECTED"]}}}})
    records = [stream_record(loan_image("A", status="REJECTED"), sequence=1),
               stream_record(loan_image("B", status="APPROVED"), sequence=2)]
    h = Harness(_esm(filter_criteria={"Filters": [{"Pattern": pattern}]}), _ok).run(records)
    assert h.calls == [["1"]] and h.poller.stats.filtered == 1


def test_partial_failure_retries_from_the_checkpoint_then_succeeds():
    seen = []

    def fail_1002_once(sequences):
        seen.append(sequences)
        if len(seen) == 1:
            return json.dumps({"batchItemFailures": [{"itemIdentifier": "1002"}]}), False, ""
        return _ok(sequences)

    h = Harness(_esm(), fail_1002_once).run(_records(4))
    assert h.calls == [["1000", "1001", "1002", "1003"], ["1002", "1003"]]
    assert h.dead_letters == []


def test_poison_record_goes_to_on_failure_after_max_retries_and_the_shard_moves_on():
    def always_fail_1001(sequences):
        if "1001" in sequences:
            return json.dumps({"batchItemFailures": [{"itemIdentifier": "1001"}]}), False, ""
        return _ok(sequences)

    h = Harness(_esm(batch_size=2, max_retry_attempts=2), always_fail_1001).run(_records(4))
    assert h.calls == [["1000", "1001"], ["1001"], ["1001"], ["1002", "1003"]]
    (arn, message), = h.dead_letters
    assert arn.endswith(":dlq") and message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    info = message["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == ("1001", "1001", 1)


def test_function_error_bisects_the_batch_to_isolate_the_bad_record():
    def crash_on_1002(sequences):
        if "1002" in sequences:
            return json.dumps({"errorType": "Boom"}), True, ""
        return _ok(sequences)

    h = Harness(_esm(bisect_on_error=True, max_retry_attempts=1, function_response_types=None),
                crash_on_1002).run(_records(4))
    assert h.calls[0] == ["1000", "1001", "1002", "1003"]
    delivered = {s for call in h.calls for s in call if s != "1002"}
    assert delivered == {"1000", "1001", "1003"}
    assert [m["DDBStreamBatchInfo"]["startSequenceNumber"] for _, m in h.dead_letters] == ["1002"]


def test_unknown_item_identifier_fails_the_whole_batch():
    calls = []

    def bad_identifier(sequences):
        calls.append(sequences)
        if len(calls) == 1:
            return json.dumps({"batchItemFailures": [{"itemIdentifier": "nope"}]}), False, ""
        return _ok(sequences)

    h = Harness(_esm(), bad_identifier).run(_records(2))
    assert h.calls == [["1000", "1001"], ["1000", "1001"]]


def test_parallelization_factor_runs_batches_side_by_side_and_keeps_each_items_order():
    # GIVEN ParallelizationFactor 4 and a function slow enough that batches overlap
    in_flight, peak, lock = [0], [0], threading.Lock()

    def slow(sequences):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        threading.Event().wait(0.05)
        with lock:
            in_flight[0] -= 1
        return _ok(sequences)

    # WHEN 8 loans change 3 times each, interleaved (24 records, batches of 2)
    records = [stream_record(loan_image(f"L-{i % 8}", version=v), sequence=1000 + n)
               for n, (v, i) in enumerate((v, i) for v in range(3) for i in range(8))]
    h = Harness(_esm(batch_size=2, parallelization_factor=4), slow).run(records)
    # THEN several batches were in flight at once, every record was delivered once,
    assert peak[0] > 1
    delivered = sum(h.calls, [])
    assert sorted(delivered) == sorted(r["dynamodb"]["SequenceNumber"] for r in records)
    # AND each loan's changes arrived in the order they were written
    loan_of = {r["dynamodb"]["SequenceNumber"]: r["dynamodb"]["Keys"]["loan_id"]["S"] for r in records}
    for loan in {*loan_of.values()}:
        seen = [s for s in delivered if loan_of[s] == loan]
        assert seen == sorted(seen)
