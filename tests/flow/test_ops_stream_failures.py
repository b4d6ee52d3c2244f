"""The router never drops a status change: throttled StartExecution waits; what still fails is listed and redriven."""

import json
import time

import pytest

from tests.flow.conftest import executions_for, ops_run, unique

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("no_make_local")]  # the in-process cloud


def _router_stats(cloud):
    """(stream retries, records given up on) of the Loans -> StreamRouter mapping so far."""
    pollers = [p for p in cloud.pump.pollers if "StreamRouter" in p.function_name]
    return (pollers[0].stats.retries, pollers[0].stats.sent_to_on_failure) if pollers else (0, 0)


def _json(*argv):
    code, out, err = ops_run(*argv, "--json")
    assert out.strip(), err
    return code, json.loads(out), err


def test_a_throttled_start_execution_is_retried_within_the_record_and_the_notice_starts(cloud, platform,
                                                                                         providers):
    # GIVEN Step Functions answers the router's StartExecution with ThrottlingException (its bucket is empty)
    borrower = platform.borrower()
    loan_id = unique("L")
    before = _router_stats(cloud)
    calls = providers.calls.get(("states", cloud.region), 0)
    providers.throttle("states", cloud.region, times=1)
    # WHEN the status change arrives
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    # THEN the router's own retries absorbed the throttles: the execution started and the notice was delivered,
    # the batch was never failed (no stream retry) and nothing reached the failure queue
    assert providers.calls[("states", cloud.region)] - calls == 2
    (execution,) = executions_for(cloud, loan_id)
    assert execution["status"] == "SUCCEEDED"
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED"
    assert _router_stats(cloud) == before


def test_failure_queue_records_are_listed_and_redriving_twice_starts_one_execution(cloud, platform, providers):
    # GIVEN Step Functions is unavailable to the router until the stream mapping gives up on the record
    borrower = platform.borrower()
    loan_id = unique("L")
    given_up = _router_stats(cloud)[1]
    providers.down("states", cloud.region)
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    deadline = time.monotonic() + 30
    while _router_stats(cloud)[1] == given_up:
        assert time.monotonic() < deadline, "the record never reached the failure queue"
        time.sleep(0.01)
    providers.reset()
    assert executions_for(cloud, loan_id) == []
    # WHEN ops list the failure queue
    code, listed, _ = _json("stream-failures", "list")
    # THEN the batch is there with its record, read back from the stream
    assert code == 0
    (entry,) = [e for e in listed if any(r["loan_id"] == loan_id for r in e["records"])]
    assert entry["condition"] == "RetryAttemptsExhausted"
    assert [(r["loan_id"], r["status"], r["version"]) for r in entry["records"]] == [(loan_id, "APPROVED", "1")]
    body = next(m["Body"] for m in cloud.client("sqs").receive_message(
        QueueUrl=cloud.outputs["StreamFailureQueueUrl"], VisibilityTimeout=0)["Messages"])
    # WHEN they redrive it through the router
    code, redriven, _ = _json("stream-failures", "redrive")
    # THEN the notice starts and the message leaves the queue
    assert code == 0
    (result,) = [r for r in redriven if any(x["loan_id"] == loan_id for x in r["records"])]
    assert result["deleted"] is True and result["records"][0]["execution_status"] is not None
    cloud.wait_idle()
    duplicates = platform.notices(loan_id)[0]["duplicate_deliveries"]  # the stream's own retries counted too
    # AND redriving the same record again (a redrive whose delete was lost) starts nothing new
    cloud.client("sqs").send_message(QueueUrl=cloud.outputs["StreamFailureQueueUrl"], MessageBody=body)
    code, again, _ = _json("stream-failures", "redrive")
    assert code == 0 and again[0]["deleted"] is True
    cloud.wait_idle()
    (execution,) = executions_for(cloud, loan_id)
    assert execution["status"] == "SUCCEEDED"
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED" and notice["duplicate_deliveries"] == duplicates + 1
    assert len(platform.sms_to(borrower["phone"])) == 1
    code, empty, _ = _json("stream-failures", "list")
    assert code == 0 and empty == []
