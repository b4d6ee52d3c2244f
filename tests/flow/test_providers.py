import pytest

from tests.flow.conftest import entered_states, executions_for, unique

pytestmark = pytest.mark.flow


def test_a_throttle_is_a_wait_never_a_failover_a_fallback_or_a_spent_retry(cloud, platform, providers):
    borrower = platform.borrower()
    loan_id = unique("L")
    # GIVEN the primary SMS provider answers "rate exceeded" more times than the transient-failure retry budget (4)
    providers.throttle("sms-voice", "us-east-1", times=6)
    backup_calls = providers.calls.get(("sms-voice", "us-west-2"), 0)  # what earlier tests in this session made
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    # THEN the notice waited and the primary provider sent it: no backup region, no email, no review case
    (sms,) = platform.sms_to(borrower["phone"])
    assert sms["region"] == "us-east-1"
    assert providers.calls.get(("sms-voice", "us-west-2"), 0) == backup_calls
    (notice,) = platform.notices(loan_id)
    assert [(a["provider"], a["result"]) for a in notice["attempts"]] == [("sms-voice@us-east-1", "SENT")]
    assert notice["throttled"] == 6 and notice["state"] == "DELIVERED" and "case_id" not in notice
    # AND the waits happened in the outbox (the send was put back), not in the execution: no failed task at all
    history = cloud.history(notice["notification_id"])
    assert [e for e in history if e["type"] == "TaskFailed"] == []
    assert entered_states(cloud, notice["notification_id"])[-1] == "Wait for the delivery receipt"


def test_sms_provider_down_fails_over_to_the_backup_provider(cloud, platform, providers):
    borrower = platform.borrower()
    loan_id = unique("L")
    providers.down("sms-voice", "us-east-1")
    platform.status(loan_id, borrower["borrower_id"], "REJECTED", 1)
    cloud.wait_idle()
    (sms,) = platform.sms_to(borrower["phone"])
    assert sms["region"] == "us-west-2"
    (notice,) = platform.notices(loan_id)
    assert [(a["provider"], a["result"]) for a in notice["attempts"]] == [
        ("sms-voice@us-east-1", "FAILED_TRANSIENT"), ("sms-voice@us-west-2", "SENT")]
    (execution,) = executions_for(cloud, loan_id)
    assert execution["status"] == "SUCCEEDED"


def test_every_sms_provider_down_falls_back_to_email_after_bounded_retries(cloud, platform, providers):
    borrower = platform.borrower()
    loan_id = unique("L")
    providers.down("sms-voice", "us-east-1")
    providers.down("sms-voice", "us-west-2")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    assert platform.sms_to(borrower["phone"]) == []
    (email,) = platform.emails_to(borrower["email"])
    (notice,) = platform.notices(loan_id)
    sms_tries = [a for a in notice["attempts"] if a["channel"] == "SMS"]
    assert len(sms_tries) == 2 * 5, [(a["attempt"], a["provider"], a["started_at"]) for a in sms_tries]
    assert notice["attempts"][-1]["channel"] == "EMAIL" and notice["attempts"][-1]["result"] == "SENT"
    assert "Try the next channel" in entered_states(cloud, notice["notification_id"])
