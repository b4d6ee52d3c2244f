"""Delivery confirmation: receipts settle the waiting execution; late, duplicate and out-of-order ones are kept."""

import json

import pytest

from localcloud.providers import SMS_SIMULATOR_NUMBERS
from tests.flow.conftest import deliveries_table, entered_states, executions_for, receipts_of, unique

pytestmark = pytest.mark.flow


def test_sms_receipt_confirms_the_notice(cloud, platform):
    borrower = platform.borrower()
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    (attempt,) = notice["attempts"]
    assert notice["state"] == "DELIVERED" and attempt["delivery_status"] == "DELIVERED"
    assert [r["status"] for r in receipts_of(attempt)] == ["DELIVERED"]
    assert receipts_of(attempt)[0]["detail"] == "Message has been accepted by phone"
    described = cloud.wait_execution(notice["notification_id"])
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["delivery"]["status"] == "DELIVERED"


def test_sms_failure_receipt_moves_to_email(cloud, platform):
    # GIVEN the End User Messaging simulator number that always fails
    borrower = platform.borrower(phone=SMS_SIMULATOR_NUMBERS["US"][1])
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "REJECTED", 1)
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    assert [(a["channel"], a["delivery_status"]) for a in notice["attempts"]] == [
        ("SMS", "FAILED"), ("EMAIL", "DELIVERED")]
    assert notice["state"] == "DELIVERED"
    history = cloud.history(notice["notification_id"])
    failed = [e["taskFailedEventDetails"] for e in history if e["type"] == "TaskFailed"]
    assert failed[0]["error"] == "PermanentChannelError"  # moto drops SendTaskFailure's cause; AWS keeps it
    assert receipts_of(notice["attempts"][0])[0]["detail"] == "Unknown error attempting to reach phone"


def test_email_bounce_marks_the_address_and_opens_a_review_case(cloud, platform):
    borrower = platform.borrower(phone=None, email="bounce@simulator.amazonses.com")
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "NEEDS_REVIEW"
    assert notice["attempts"][0]["delivery_status"] == "BOUNCED"
    assert "Permanent bounce General" in receipts_of(notice["attempts"][0])[0]["detail"]
    saved = platform.borrowers.get_item(Key={"borrower_id": borrower["borrower_id"]})["Item"]
    assert saved["email_health"]["bounced"] is True


def test_complaint_after_delivery_opts_the_address_out(cloud, platform):
    borrower = platform.borrower(phone=None, email="complaint@simulator.amazonses.com")
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "SETTLED", 1)
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    # the two events may arrive in either order; the status ends at COMPLAINED either way
    assert sorted(r["status"] for r in receipts_of(notice["attempts"][0])) == ["COMPLAINED", "DELIVERED"]
    assert notice["attempts"][0]["delivery_status"] == "COMPLAINED" and notice["state"] == "DELIVERED"
    saved = platform.borrowers.get_item(Key={"borrower_id": borrower["borrower_id"]})["Item"]
    assert saved["email_health"]["opted_out"] is True


def test_sms_opt_out_receipt_marks_the_phone_and_falls_back(cloud, platform, providers):
    borrower = platform.borrower()
    providers.sms_outcome(borrower["phone"], "TEXT_BLOCKED", "Phone has opted out")
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "OVERDUE", 1, amount=300, currency="USD")
    cloud.wait_idle()
    saved = platform.borrowers.get_item(Key={"borrower_id": borrower["borrower_id"]})["Item"]
    assert saved["phone_health"]["opted_out"] is True
    assert len(platform.emails_to(borrower["email"])) == 1
    # AND the next notice skips the opted-out phone altogether
    platform.status(loan_id, borrower["borrower_id"], "SETTLED", 2)
    cloud.wait_idle()
    latest = platform.notices(loan_id)[-1]
    assert [a["channel"] for a in latest["attempts"]] == ["EMAIL"]


def test_no_receipt_by_the_deadline_moves_on_and_a_late_receipt_is_still_recorded(cloud, platform, providers):
    borrower = platform.borrower()
    providers.silence("sms-voice", "us-east-1")
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    sms_attempt, email_attempt = notice["attempts"]
    assert sms_attempt["delivery_status"] == "SENT" and email_attempt["delivery_status"] == "DELIVERED"
    history = cloud.history(notice["notification_id"])
    assert any(e["type"] == "TaskTimedOut" for e in history)
    assert entered_states(cloud, notice["notification_id"]).count("Wait for the delivery receipt") == 2
    # WHEN the carrier's receipt for the SMS turns up after the execution moved on
    late = providers.sms_event(sms_attempt["message_id"], borrower["phone"], "TEXT_DELIVERED",
                               "Message has been accepted by phone")
    providers.deliver_sms_receipt(late)
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    assert notice["attempts"][0]["delivery_status"] == "DELIVERED"
    assert executions_for(cloud, loan_id)[0]["status"] == "SUCCEEDED"
    delivery = deliveries_table(cloud).get_item(Key={"message_id": sms_attempt["message_id"]})["Item"]
    assert delivery["status"] == "DELIVERED" and delivery["callback"] == "DONE"


def test_duplicate_and_out_of_order_receipts_never_move_a_status_back(cloud, platform, providers):
    borrower = platform.borrower()
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "DISBURSED", 1)
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    message_id = notice["attempts"][0]["message_id"]
    entries = int(notice["chain_seq"])
    # WHEN the same receipt comes twice, then an older "unreachable" one arrives late
    again = providers.sms_event(message_id, borrower["phone"], "TEXT_DELIVERED", "accepted")
    providers.deliver_sms_receipt(again)
    providers.deliver_sms_receipt(again)
    stale = providers.sms_event(message_id, borrower["phone"], "TEXT_UNREACHABLE",
                                "Phone is currently unreachable/unavailable")
    providers.deliver_sms_receipt(stale)
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    attempt = notice["attempts"][0]
    assert attempt["delivery_status"] == "DELIVERED" and notice["state"] == "DELIVERED"
    # AND the receipts stay bounded: the first of each kind is kept, every one is counted
    assert [r["status"] for r in receipts_of(attempt)] == ["DELIVERED", "UNKNOWN"]
    assert notice["chain_seq"] == entries + 1  # only the new kind of receipt was written: the chain stays bounded
    delivery = deliveries_table(cloud).get_item(Key={"message_id": message_id})["Item"]
    assert delivery["receipt_count"] == 4 and len(delivery["receipts"]) == 2
    assert len(platform.sms_to(borrower["phone"])) == 1
    assert cloud.async_errors == []
