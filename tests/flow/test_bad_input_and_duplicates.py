import json

import pytest

from localcloud.streams import lane_of
from tests.flow.conftest import executions_for, unique

pytestmark = pytest.mark.flow


def test_same_stream_record_delivered_twice_is_one_execution_and_one_sms(cloud, platform):
    borrower = platform.borrower()
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    # WHEN the shard hands the router the same record again (a retried or replayed batch)
    (record,) = cloud.redeliver_last("LoansTableName")
    cloud.wait_idle()
    assert record["dynamodb"]["NewImage"]["loan_id"]["S"] == loan_id
    # THEN still one execution and one SMS; the ledger counts the duplicate
    assert len(executions_for(cloud, loan_id)) == 1
    assert len(platform.sms_to(borrower["phone"])) == 1
    (notice,) = platform.notices(loan_id)
    assert notice["duplicate_deliveries"] == 1 and notice["state"] == "DELIVERED"


def _router_mapping(cloud):
    lam = cloud.client("lambda")
    router = cloud.runtime.function("StreamRouterFunction").name
    (mapping,) = lam.list_event_source_mappings(FunctionName=router)["EventSourceMappings"]
    return lam, mapping["UUID"]


def _same_lane(cloud, prefixes):
    """Loan ids whose changes share one ParallelizationFactor lane of the shard, so they reach the router in one
    batch (other loans' changes may run in other batches at the same time, as in Lambda)."""
    lanes = int(cloud.client("lambda").list_event_source_mappings(
        FunctionName=cloud.runtime.function("StreamRouterFunction").name)["EventSourceMappings"][0].get(
        "ParallelizationFactor", 1))
    ids, target = {}, None
    for key in prefixes:
        while True:
            candidate = unique(f"L-{key}")
            lane = lane_of({"loan_id": {"S": candidate}}, lanes)
            if target in (None, lane):
                ids[key], target = candidate, lane
                break
    return ids


def test_bad_records_never_block_their_batch(cloud, platform):
    good = platform.borrower()
    ids = _same_lane(cloud, ("ok1", "unknown_status", "no_borrower_id", "ok2"))
    lam, mapping = _router_mapping(cloud)
    router_calls = cloud.runtime.invocations.get("StreamRouterFunction", 0)
    # GIVEN the mapping is paused, so the next writes reach the router as one batch
    lam.update_event_source_mapping(UUID=mapping, Enabled=False)
    try:
        platform.status(ids["ok1"], good["borrower_id"], "APPROVED", 1)
        platform.status(ids["unknown_status"], good["borrower_id"], "APPROVED_MAYBE", 1)
        platform.loans.put_item(Item={"loan_id": ids["no_borrower_id"], "status": "REJECTED", "version": 1,
                                      "updated_at": "2026-11-29T08:00:00Z"})
        platform.status(ids["ok2"], good["borrower_id"], "DISBURSED", 1)
    finally:
        lam.update_event_source_mapping(UUID=mapping, Enabled=True)
    cloud.wait_idle()
    # THEN one router invocation handled all four, and both good notices went out
    assert cloud.runtime.invocations["StreamRouterFunction"] == router_calls + 1
    assert len(platform.sms_to(good["phone"])) == 2
    states = [n["state"] for n in platform.notices(ids["ok1"]) + platform.notices(ids["ok2"])]
    assert states == ["DELIVERED", "DELIVERED"]
    # AND every bad record is in the ledger with its reason, and no execution was started for it
    ledger = platform.ledger._table
    rejected = [i for i in ledger.scan()["Items"] if i.get("loan_id") in ids.values() and i["state"] == "REJECTED"]
    assert {i["loan_id"]: i["reason"] for i in rejected} == {
        ids["unknown_status"]: "invalid_status",
        ids["no_borrower_id"]: "missing_borrower_id",
    }
    for key in ("unknown_status", "no_borrower_id"):
        assert executions_for(cloud, ids[key]) == []
    # AND the router counted them in its RejectedStatusChange metric
    emf = [json.loads(line.line) for line in cloud.runtime.logs
           if line.function == "StreamRouterFunction" and '"_aws"' in line.line]
    assert sum(sum(m.get("RejectedStatusChange", [])) for m in emf) >= 2


def test_nothing_reaches_the_failure_queue_on_a_healthy_run(cloud):
    sqs = cloud.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=cloud.outputs["StreamFailureQueueUrl"],
                                          AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
