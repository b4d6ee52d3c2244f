"""Execution names stay within Step Functions' 80 characters, whatever the status and version."""

import time
import uuid

import pytest

from tests.flow.conftest import executions_for

pytestmark = pytest.mark.flow


def _failed_records(cloud) -> int:
    attributes = cloud.client("sqs").get_queue_attributes(QueueUrl=cloud.outputs["StreamFailureQueueUrl"],
                                                          AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


@pytest.mark.parametrize("status", ["PRELIMINARY_APPROVED", "DOCUMENTS_REQUIRED"])
def test_a_long_status_with_an_epoch_millisecond_version_is_started_and_delivered(cloud, platform, status):
    # GIVEN a 36-character loan id and a version in epoch milliseconds: an 83-character notification id
    borrower = platform.borrower()
    loan_id = f"L-{uuid.uuid4().hex}{uuid.uuid4().hex}"[:36]
    version = int(time.time() * 1000)
    failed_before = _failed_records(cloud)
    # WHEN the platform writes the status change, and the shard delivers the record a second time
    platform.status(loan_id, borrower["borrower_id"], status, version)
    cloud.wait_idle()
    (record,) = cloud.redeliver_last("LoansTableName")
    assert record["dynamodb"]["NewImage"]["loan_id"]["S"] == loan_id
    cloud.wait_idle()
    # THEN one execution ran, under a name of at most 80 characters that starts with the loan id
    (execution,) = executions_for(cloud, loan_id)
    assert len(execution["name"]) <= 80 and execution["status"] == "SUCCEEDED"
    # AND the ledger item, keyed by the full notification id, names that execution; the notice was delivered once
    (notice,) = platform.notices(loan_id)
    assert len(notice["notification_id"]) > 80
    assert notice["execution_name"] == execution["name"]
    assert notice["state"] == "DELIVERED" and notice["duplicate_deliveries"] == 1
    assert len(platform.sms_to(borrower["phone"])) == 1
    # AND nothing went to the stream's failure queue
    assert _failed_records(cloud) == failed_before


def test_a_long_named_notice_waiting_on_a_person_is_parked_like_any_other(cloud, platform):
    # GIVEN a borrower with no contact at all, and an 83-character notification id
    borrower = platform.borrower(phone=None, email=None)
    loan_id = f"L-{uuid.uuid4().hex}{uuid.uuid4().hex}"[:36]
    # WHEN the notice ends waiting on a review case
    platform.status(loan_id, borrower["borrower_id"], "DOCUMENTS_REQUIRED", int(time.time() * 1000))
    cloud.wait_idle(timeout=20)  # returns: an execution waiting on a person is not "still running" work
    # THEN the case names the notification id and the execution, under its shortened name, waits on it
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "NEEDS_REVIEW" and notice["reason"] == "no_channel_delivered"
    case = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": notice["case_id"]})["Item"]
    assert case["notification_id"] == notice["notification_id"]
    (execution,) = executions_for(cloud, loan_id)
    assert execution["name"] == notice["execution_name"] and execution["status"] == "RUNNING"
