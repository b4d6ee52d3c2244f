import pytest

from tests.flow.conftest import assert_no_personal_data, entered_states, executions_for, unique

pytestmark = pytest.mark.flow


def test_invalid_phone_falls_back_to_email_in_the_same_execution(cloud, platform):
    # GIVEN a borrower whose phone number was mistyped at application
    borrower = platform.borrower(phone="+1555")
    loan_id = unique("L")
    # WHEN the loan is approved
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1, amount=8000, currency="USD")
    cloud.wait_idle()
    # THEN no SMS went out, one email did, through SES v2
    assert platform.sms_to("+1555") == []
    (email,) = platform.emails_to(borrower["email"])
    assert email["subject"] == "Your loan is approved" and "8,000.00 USD" in email["body"]
    # AND the ledger proves both attempts and why the first failed
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED"
    assert [(a["channel"], a["result"], a.get("error")) for a in notice["attempts"]] == [
        ("SMS", "FAILED_PERMANENT", "invalid_phone"), ("EMAIL", "SENT", None)]
    assert notice["attempts"][1]["message_id"] == email["message_id"]
    # AND the execution shows the fallback, and it SUCCEEDED
    (execution,) = executions_for(cloud, loan_id)
    assert execution["status"] == "SUCCEEDED"
    assert entered_states(cloud, execution["name"]) == [
        "Prepare notice", "Send now?", "Queue the send", "Try the next channel",
        "Any channel left?", "Queue the send", "Wait for the delivery receipt"]
    # AND the failure the sender told the execution carries its cause, as the history shows it in AWS
    (failed,) = [e["taskFailedEventDetails"] for e in cloud.history(execution["name"]) if e["type"] == "TaskFailed"]
    assert failed["error"] == "PermanentChannelError" and failed["cause"].startswith("invalid_phone")
    assert_no_personal_data(cloud, borrower, [execution["name"]])


def test_no_usable_channel_opens_a_review_case_that_a_person_owns(cloud, platform):
    borrower = platform.borrower(phone="+9991234567", email=None)
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "REJECTED", 1)
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "NEEDS_REVIEW" and notice["reason"] == "no_channel_delivered"
    assert [a["error"] for a in notice["attempts"]] == ["invalid_phone"]
    case = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": notice["case_id"]})["Item"]
    assert case["state"] == "OPEN" and case["loan_id"] == loan_id
    (execution,) = executions_for(cloud, loan_id)
    assert execution["status"] == "RUNNING"  # waiting for the person's decision
    assert entered_states(cloud, execution["name"])[-2:] == ["Every channel failed", "Open a review case"]


def test_email_preferred_borrower_gets_email_first(cloud, platform):
    borrower = platform.borrower(preferred_channels=["EMAIL"])
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "DISBURSED", 5, amount=20000, currency="CNY")
    cloud.wait_idle()
    assert len(platform.emails_to(borrower["email"])) == 1
    assert platform.sms_to(borrower["phone"]) == []
