"""Escalation to a person: review cases, the ops command, resend after a contact correction, re-alerts."""

import json

import pytest

from loan_notify_ops.cli import main as ops
from tests.flow.conftest import BORROWERS_SEEN, entered_states, executions_for, mobile, unique

pytestmark = pytest.mark.flow


def _alerts(cloud):
    from moto.sns.models import sns_backends

    topic = sns_backends["123456789012"][cloud.region].topics[cloud.outputs["OpsAlertsTopicArn"]]
    return [json.loads(message) for _, message, *_ in topic.sent_notifications]


def _undeliverable(cloud, platform, status="APPROVED"):
    borrower = platform.borrower(phone="+9991234567", email=None)
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], status, 1)
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    return borrower, loan_id, notice


def test_everything_fails_then_ops_correct_the_contact_and_the_resend_is_delivered(cloud, platform, capsys):
    # GIVEN a notice no channel could deliver: a case is open and ops were alerted with ids only
    borrower, loan_id, notice = _undeliverable(cloud, platform)
    case_id = notice["case_id"]
    alert = next(a for a in _alerts(cloud) if a["case_id"] == case_id)
    assert alert["loan_id"] == loan_id and alert["reason"] == "no_channel_delivered"
    assert borrower["phone"] not in json.dumps(alert) and borrower["name"] not in json.dumps(alert)
    assert ops(["cases", "list", "--json"]) == 0
    assert case_id in [c["case_id"] for c in json.loads(capsys.readouterr().out)]
    # WHEN the platform fixes the phone number and ops resolve the case as "contact corrected"
    new_phone = mobile()
    BORROWERS_SEEN.append({**borrower, "phone": new_phone})  # the session-end scan looks for it too
    platform.borrowers.update_item(Key={"borrower_id": borrower["borrower_id"]},
                                   UpdateExpression="SET phone = :p", ExpressionAttributeValues={":p": new_phone})
    assert ops(["cases", "resolve", case_id, "--decision", "contact_corrected", "--corrected", "phone",
                "--note", "borrower called in with the right number", "--by", "ops.li"]) == 0
    cloud.wait_idle()
    # THEN the same execution sent again through the normal path, and the notice is delivered
    assert len(platform.sms_to(new_phone)) == 1
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED"
    assert [(a["channel"], a["result"]) for a in notice["attempts"]] == [("SMS", "FAILED_PERMANENT"), ("SMS", "SENT")]
    (action,) = notice["human_actions"]
    assert (action["decision"], action["by"], action["corrected"]) == ("contact_corrected", "ops.li", ["SMS"])
    (execution,) = executions_for(cloud, loan_id)
    assert execution["status"] == "SUCCEEDED"
    states = entered_states(cloud, execution["name"])
    assert states.count("Prepare notice") == 2 and states[-1] == "Wait for the delivery receipt"
    # AND the reviewer's note never entered the execution's history
    assert "borrower called in" not in json.dumps(cloud.history(execution["name"]), default=str)
    case = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": case_id})["Item"]
    assert case["state"] == "RESOLVED" and case["decision"] == "contact_corrected"


def test_reached_by_phone_closes_the_notice_as_delivered_by_a_person(cloud, platform):
    _, loan_id, notice = _undeliverable(cloud, platform, status="REJECTED")
    assert ops(["cases", "resolve", notice["case_id"], "--decision", "reached_by_phone",
                "--note", "explained the rejection by phone", "--by", "ops.sam"]) == 0
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED_BY_PERSON"
    (execution,) = executions_for(cloud, loan_id)
    assert execution["status"] == "SUCCEEDED"
    assert entered_states(cloud, execution["name"])[-1] == "Notice delivered by a person"
    # a second decision on the same case is refused
    assert ops(["cases", "resolve", notice["case_id"], "--decision", "closed", "--note", "x", "--by", "y"]) == 2


def test_overdue_case_alerts_again_on_every_watchdog_run(cloud, platform):
    # GIVEN a case past its deadline
    _, loan_id, notice = _undeliverable(cloud, platform, status="OVERDUE")
    cases = cloud.table("ReviewCasesTableName")
    cases.update_item(Key={"case_id": notice["case_id"]}, UpdateExpression="SET due_at = :past",
                      ExpressionAttributeValues={":past": "2000-01-01T00:00:00.000Z"})
    watchdog = cloud.runtime.function("ReviewWatchdogFunction").name
    # WHEN the watchdog runs twice (every 15 minutes)
    for _ in range(2):
        payload, is_error, _ = cloud.runtime.invoke(watchdog, {"source": "aws.events",
                                                               "detail-type": "Scheduled Event"})
        assert not is_error and notice["case_id"] in json.loads(payload)["realerted"]
    # THEN each run alerted again: overdue stays overdue until someone answers
    case = cases.get_item(Key={"case_id": notice["case_id"]})["Item"]
    assert case["alerts"] == 3 and case["due_at"] == "2000-01-01T00:00:00.000Z"
    assert [a["alerts"] for a in _alerts(cloud) if a["case_id"] == notice["case_id"]] == [1, 2, 3]
    ops(["cases", "resolve", notice["case_id"], "--decision", "closed", "--note", "test done", "--by", "t"])
    cloud.wait_idle()


def test_evidence_export_tells_the_whole_story(cloud, platform, capsys):
    borrower = platform.borrower(phone="+1555")  # SMS fails, email delivers
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1, amount=9000, currency="USD")
    cloud.wait_idle()
    assert ops(["evidence", loan_id, "--json"]) == 0
    evidence = json.loads(capsys.readouterr().out)
    (notice,) = evidence["notices"]
    assert notice["status_change"]["status"] == "APPROVED" and notice["policy_version"]
    assert notice["template"] == {"id": "loan.approved", "version": 2} and len(notice["content_sha256"]) == 64
    assert [(a["channel"], a["result"]) for a in notice["attempts"]] == [("SMS", "FAILED_PERMANENT"),
                                                                       ("EMAIL", "SENT")]
    assert notice["attempts"][1]["receipts"][0]["status"] == "DELIVERED"
    assert (notice["attempts"][0]["sms_encoding"], notice["attempts"][0]["sms_segments"]) == ("GSM-7", 1)
    assert notice["outcome"]["state"] == "DELIVERED" and notice["outcome"]["delivered_at"]
    assert borrower["email"] not in json.dumps(evidence)  # destinations are masked
    assert ops(["evidence", loan_id]) == 0
    table = capsys.readouterr().out
    assert "Proof of notice for loan" in table and "EMAIL via ses-v2@us-east-1" in table


def test_a_receipt_after_the_deadline_closes_the_case_its_execution_opened(cloud, platform, providers):
    # GIVEN SMS and email stay silent past their confirmation deadlines, so the execution opened a review case
    providers.silence("sms-voice", cloud.region)
    providers.silence("ses", cloud.region)
    borrower = platform.borrower()
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "NEEDS_REVIEW" and notice.get("case_id")
    providers.reset()
    sms = notice["attempts"][0]
    # (the wait for that SMS's receipt timed out: Step Functions no longer takes its token, as in AWS)
    token = cloud.table("DeliveriesTableName").get_item(Key={"message_id": sms["message_id"]})["Item"]["task_token"]
    with pytest.raises(cloud.client("stepfunctions").exceptions.TaskTimedOut):
        cloud.client("stepfunctions").send_task_success(taskToken=token, output="{}")
    # WHEN the SMS's delivered receipt arrives after all
    providers.deliver_sms_receipt(providers.sms_event(sms["message_id"], borrower["phone"], "TEXT_DELIVERED",
                                                      "Message has been accepted by phone"))
    cloud.wait_idle()
    # THEN the notice is DELIVERED, its case closed itself, and the execution ended as delivered
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED"
    case = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": notice["case_id"]})["Item"]
    assert case["state"] != "OPEN"
    (execution,) = executions_for(cloud, loan_id)
    assert execution["status"] == "SUCCEEDED"
    assert cloud.async_errors == []
