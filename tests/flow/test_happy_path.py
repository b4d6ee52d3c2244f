import pytest

from tests.flow.conftest import assert_no_personal_data, entered_states, executions_for, unique

pytestmark = pytest.mark.flow


def test_status_changes_end_in_one_sms_each_and_a_ledger_item(cloud, platform):
    # GIVEN a borrower with a phone number
    borrower = platform.borrower()
    loan_id = unique("L")
    # WHEN the platform writes a new loan and then approves it
    platform.status(loan_id, borrower["borrower_id"], "SUBMITTED", 1)
    cloud.wait_idle()  # (changes close together run as parallel executions: send order is not guaranteed)
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 2, amount=12000, currency="USD")
    cloud.wait_idle()
    # THEN the borrower got exactly two SMS, in order, with the approval's amount
    sms = platform.sms_to(borrower["phone"])
    assert len(sms) == 2
    assert "received your loan application" in sms[0]["text"] and "12,000.00 USD" in sms[1]["text"]
    # AND the ledger holds one SENT notice per status, each with its SMS attempt and provider message id
    notices = platform.notices(loan_id)
    assert [(n["status"], n["state"]) for n in notices] == [("SUBMITTED", "DELIVERED"), ("APPROVED", "DELIVERED")]
    attempt = notices[1]["attempts"][0]
    assert attempt["channel"] == "SMS" and attempt["result"] == "SENT"
    assert attempt["message_id"] == sms[1]["message_id"]
    assert attempt["destination"].endswith(borrower["phone"][-4:]) and borrower["phone"] not in str(notices)
    assert notices[1]["content_hash"] == attempt["content_hash"] and notices[1]["template_id"] == "loan.approved"
    # AND each change ran one execution named after its notice, which SUCCEEDED through the expected states
    executions = executions_for(cloud, loan_id)
    assert sorted(e["name"] for e in executions) == sorted(n["notification_id"] for n in notices)
    assert {e["status"] for e in executions} == {"SUCCEEDED"}
    assert entered_states(cloud, notices[1]["notification_id"]) == [
        "Prepare notice", "Send now?", "Queue the send", "Wait for the delivery receipt"]
    assert_no_personal_data(cloud, borrower, [e["name"] for e in executions])


def test_update_that_keeps_the_status_starts_nothing(cloud, platform):
    borrower = platform.borrower()
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "REPAYMENT_DUE", 1, amount=500, currency="USD")
    cloud.wait_idle()
    invocations_before = cloud.runtime.invocations.get("StreamRouterFunction", 0)
    # WHEN only the amount changes
    platform.status(loan_id, borrower["borrower_id"], "REPAYMENT_DUE", 2, amount=450, currency="USD")
    cloud.wait_idle()
    # THEN the trigger's filter dropped it: no invocation, no execution, no second SMS
    assert cloud.runtime.invocations.get("StreamRouterFunction", 0) == invocations_before
    assert len(executions_for(cloud, loan_id)) == 1
    assert len(platform.sms_to(borrower["phone"])) == 1


def test_chinese_borrower_gets_the_zh_cn_template(cloud, platform):
    borrower = platform.borrower(locale="zh-CN", name="王伟")
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "REJECTED", 3, status_reason="收入证明不足")
    cloud.wait_idle()
    (sms,) = platform.sms_to(borrower["phone"])
    # the +86 carriers' signature first; the status reason is for email and the in-app center, never for SMS
    assert sms["text"].startswith("【信贷通知】王伟您好") and "未获批准" in sms["text"]
    assert "收入证明不足" not in sms["text"]


def test_rapid_changes_to_one_loan_route_in_order_and_interim_notices_stand_down(cloud, platform):
    borrower = platform.borrower()
    loan_id = unique("L")
    statuses = ["SUBMITTED", "PRELIMINARY_APPROVED", "DOCUMENTS_REQUIRED", "APPROVED", "DISBURSED"]
    for version, status in enumerate(statuses, start=1):
        platform.status(loan_id, borrower["borrower_id"], status, version)
    cloud.wait_idle()
    notices = sorted(platform.notices(loan_id), key=lambda n: n["created_at"])
    assert [n["status"] for n in notices] == statuses  # the router saw them in the order they were written
    states = {n["status"]: n["state"] for n in notices}
    # progress updates overtaken by a later status stand down (when their execution saw the newer one in time)
    for interim in statuses[:3]:
        assert states[interim] in ("SUPERSEDED", "DELIVERED")
    assert states["APPROVED"] == states["DISBURSED"] == "DELIVERED"
    superseded = [n for n in notices if n["state"] == "SUPERSEDED"]
    assert all(n.get("superseded_by") and not n.get("attempts") for n in superseded)
    assert len(platform.sms_to(borrower["phone"])) == len(statuses) - len(superseded)
