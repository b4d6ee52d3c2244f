"""Exactly-once effects under partial failure: a send, a confirmation, a bounce and the ledger, each surviving the
failure of a step half way (the defects of the exactly-once review, reproduced on the real template)."""


import pytest

from loan_notify.errors import AttemptRaced
from loan_notify.ledger import Ledger
from loan_notify.vocabulary import NoticeState
from tests.flow.conftest import (
    BORROWERS_SEEN,
    deliveries_table,
    entered_states,
    executions_for,
    mobile,
    receipts_of,
    unique,
)

pytestmark = pytest.mark.flow


def test_a_confirmation_whose_callback_failed_is_finished_by_the_receipt_retry(cloud, platform, providers):
    # GIVEN Step Functions throttles the first task callback the receipt makes
    borrower = platform.borrower()
    loan_id = unique("L")
    providers.throttle_callbacks(times=1)
    # WHEN the notice is sent and its SMS receipt arrives (the receipt function fails once, then is retried)
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    # THEN the retry finished the work: the execution was confirmed by the receipt, not by its deadline
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED" and [a["channel"] for a in notice["attempts"]] == ["SMS"]
    assert platform.emails_to(borrower["email"]) == []
    (execution,) = executions_for(cloud, loan_id)
    assert execution["status"] == "SUCCEEDED"
    assert "Try the next channel" not in entered_states(cloud, execution["name"])
    delivery = deliveries_table(cloud).get_item(Key={"message_id": notice["attempts"][0]["message_id"]})["Item"]
    assert delivery["callback"] == "DONE"
    assert cloud.async_errors == []


def test_a_receipt_that_arrives_before_the_send_is_recorded_still_confirms_it(cloud, platform, providers):
    # GIVEN a carrier so fast its receipt reaches us inside the provider call, before the send's own record
    providers.receipt_first("sms-voice", cloud.region)
    borrower = platform.borrower()
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    # THEN the early receipt was kept and applied when the record landed: delivered, nothing sent twice
    (notice,) = platform.notices(loan_id)
    (attempt,) = notice["attempts"]
    assert notice["state"] == "DELIVERED" and attempt["delivery_status"] == "DELIVERED"
    assert [r["status"] for r in receipts_of(attempt)] == ["DELIVERED"]
    assert len(platform.sms_to(borrower["phone"])) == 1 and platform.emails_to(borrower["email"]) == []
    (execution,) = executions_for(cloud, loan_id)
    assert execution["status"] == "SUCCEEDED"
    assert "Try the next channel" not in entered_states(cloud, execution["name"])


def test_a_send_that_stopped_before_its_message_record_is_replayed_and_confirmed(cloud, platform, monkeypatch):
    # GIVEN SendNotice dies once after the provider took the SMS and the ledger recorded it, before the message's
    # own record (the one its receipts and the execution's wait look up) was written
    from loan_notify.deliveries import Deliveries

    borrower = platform.borrower()
    loan_id = unique("L")
    record_sent, stopped = Deliveries.record_sent, []

    def dies_once(self, message_id, **kwargs):
        if kwargs["notification_id"].startswith(loan_id) and not stopped:
            stopped.append(message_id)
            raise RuntimeError("the sandbox died here")
        return record_sent(self, message_id, **kwargs)

    monkeypatch.setattr(Deliveries, "record_sent", dies_once)
    # WHEN the outbox message comes back after its visibility timeout and the send is retried
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    # THEN the retry replayed the message and wrote its record: the receipt confirmed it, and no email went out
    (notice,) = platform.notices(loan_id)
    (attempt,) = notice["attempts"]
    assert stopped == [attempt["message_id"]]
    assert notice["state"] == "DELIVERED" and attempt["delivery_status"] == "DELIVERED"
    assert len(platform.sms_to(borrower["phone"])) == 1 and platform.emails_to(borrower["email"]) == []
    (execution,) = executions_for(cloud, loan_id)
    assert execution["status"] == "SUCCEEDED"
    assert "Try the next channel" not in entered_states(cloud, execution["name"])


def test_a_lost_provider_answer_goes_to_a_person_never_to_a_second_message(cloud, platform, providers):
    # GIVEN End User Messaging SMS accepts the text but the sender's connection times out before the answer (every time)
    providers.lose_answer("sms-voice", cloud.region, times=10)
    borrower = platform.borrower()
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    # THEN exactly one SMS went out: no backup region, no state machine retry, no email
    assert len(platform.sms_to(borrower["phone"])) == 1
    assert platform.emails_to(borrower["email"]) == []
    (notice,) = platform.notices(loan_id)
    assert [(a["provider"], a["result"]) for a in notice["attempts"]] == [("sms-voice@us-east-1", "OUTCOME_UNKNOWN")]
    # AND a person owns it, with the reason
    assert notice["state"] == "NEEDS_REVIEW" and notice["reason"] == "send_outcome_unknown"
    case = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": notice["case_id"]})["Item"]
    assert case["reason"] == "send_outcome_unknown" and case["state"] == "OPEN"


def test_a_late_bounce_for_the_old_number_does_not_mark_the_new_one(cloud, platform, providers):
    # GIVEN an SMS sent to the borrower's old number, its receipt still outstanding
    borrower = platform.borrower()
    loan_id = unique("L")
    platform.status_without_receipt(loan_id, borrower, "DISBURSED", 1)
    (notice,) = platform.notices(loan_id)
    message_id = notice["attempts"][0]["message_id"]
    # WHEN the borrower changes number, and then the carrier reports the old number invalid
    new_phone = mobile()
    BORROWERS_SEEN.append({**borrower, "phone": new_phone})
    platform.borrowers.update_item(Key={"borrower_id": borrower["borrower_id"]}, UpdateExpression="SET phone = :p",
                                   ExpressionAttributeValues={":p": new_phone})
    providers.deliver_sms_receipt(providers.sms_event(message_id, borrower["phone"], "TEXT_INVALID",
                                                      "Invalid phone number"))
    cloud.wait_idle()
    # THEN the failure is recorded on the old message, and the new number stays healthy
    (notice,) = platform.notices(loan_id)
    assert notice["attempts"][0]["delivery_status"] == "FAILED"
    saved = platform.borrowers.get_item(Key={"borrower_id": borrower["borrower_id"]})["Item"]
    assert not saved.get("phone_health", {}).get("bounced")
    # AND the next notice still goes to the new number by SMS
    platform.status(loan_id, borrower["borrower_id"], "SETTLED", 2)
    cloud.wait_idle()
    latest = platform.notices(loan_id)[-1]
    assert latest["attempts"], latest
    assert latest["attempts"][0]["channel"] == "SMS" and len(platform.sms_to(new_phone)) == 1


def test_a_delivery_status_never_falls_behind_and_a_final_state_is_never_overwritten(cloud, platform, providers):
    # GIVEN a sent SMS whose carrier receipt is outstanding
    borrower = platform.borrower()
    loan_id = unique("L")
    platform.status_without_receipt(loan_id, borrower, "DISBURSED", 1)
    (notice,) = platform.notices(loan_id)
    message_id = notice["attempts"][0]["message_id"]
    # WHEN the borrower reads it in the app, and only then the carrier's "delivered" arrives
    assert cloud.runtime is not None
    receipts = cloud.runtime.function("IngestReceiptsFunction").name
    cloud.runtime.invoke(receipts, {"read_receipts": [{"message_id": message_id,
                                                       "read_at": "2026-11-29T08:00:05.000Z"}]})
    providers.deliver_sms_receipt(providers.sms_event(message_id, borrower["phone"], "TEXT_DELIVERED",
                                                      "Message has been accepted by phone"))
    cloud.wait_idle()
    # THEN the attempt stays READ in the ledger, as in the deliveries table, and both receipts are kept
    (notice,) = platform.notices(loan_id)
    attempt = notice["attempts"][0]
    assert attempt["delivery_status"] == "READ" and notice["state"] == "DELIVERED"
    assert sorted(r["status"] for r in receipts_of(attempt)) == ["DELIVERED", "READ"]
    assert deliveries_table(cloud).get_item(Key={"message_id": message_id})["Item"]["status"] == "READ"
    # AND a late attempt record (a retried step's write) cannot move the DELIVERED notice back to SENT
    ledger = Ledger(cloud.table("NotificationsTableName"))
    ledger.begin_attempt(notice["notification_id"], {"attempt": 2, "channel": "EMAIL", "provider": "ses-v2"})
    ledger.append_attempt(notice["notification_id"], {"attempt": 2, "channel": "EMAIL", "provider": "ses-v2",
                                                      "result": "SENT"}, state=NoticeState.SENT)
    ledger.append_attempt(notice["notification_id"], {"attempt": 2, "channel": "EMAIL", "provider": "ses-v2",
                                                      "result": "SENT"}, state=NoticeState.SENT)  # a retried write
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED" and [a["attempt"] for a in notice["attempts"]] == [1, 2]
    # AND an attempt begun on a stale read of the notice (a second copy of an outbox message) is refused unwritten
    with pytest.raises(AttemptRaced):
        ledger.begin_attempt(notice["notification_id"], {"attempt": 2, "channel": "EMAIL", "provider": "ses-v2"})
    assert "pending_attempt" not in platform.notices(loan_id)[0]


def test_a_backup_region_email_is_confirmed_by_its_own_receipt(cloud, platform, providers):
    # GIVEN SES is down in the stack's region, so a critical notice's email goes through the backup region
    providers.down("ses", cloud.region)
    borrower = platform.borrower(phone=None)
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    # THEN the backup send named the backup region's configuration set (backup-region.yaml), and the event SES
    # published there reached IngestReceipts across regions: delivered on a receipt, as through the primary
    (email,) = platform.emails_to(borrower["email"])
    assert email["region"] == "us-west-2"
    (notice,) = platform.notices(loan_id)
    backup = notice["attempts"][-1]
    assert (backup["provider"], backup["result"], backup["delivery_status"]) == ("ses-v2@us-west-2", "SENT",
                                                                                 "DELIVERED")
    assert [r["status"] for r in receipts_of(backup)] == ["DELIVERED"]
    assert notice["state"] == "DELIVERED" and "case_id" not in notice
    (execution,) = executions_for(cloud, loan_id)
    assert execution["status"] == "SUCCEEDED"


def test_a_backup_send_without_a_receipt_is_never_called_delivered(cloud, platform, providers):
    # GIVEN SES is down in the stack's region and the backup region's events never come
    providers.down("ses", cloud.region)
    providers.silence("ses", "us-west-2")
    borrower = platform.borrower(phone=None)
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    # THEN the backup send waited for its receipt like any other, and with none by the deadline a person owns it
    (notice,) = platform.notices(loan_id)
    backup = notice["attempts"][-1]
    assert (backup["provider"], backup["result"], backup["delivery_status"]) == ("ses-v2@us-west-2", "SENT", "SENT")
    assert notice["state"] == "NEEDS_REVIEW" and notice["reason"] == "no_channel_delivered"
    assert any(e["type"] == "TaskTimedOut" for e in cloud.history(notice["notification_id"]))


class _SendLandsMidReceipt:
    """A deliveries table whose first refused receipt write lets the send's record land before answering: the
    moment a receipt and its send race in real Lambda, made to happen every time."""

    def __init__(self, table, land):
        self._table, self._land, self.landed = table, land, False

    def update_item(self, **kwargs):
        try:
            return self._table.update_item(**kwargs)
        except Exception:
            if not self.landed and "receipts" in kwargs["UpdateExpression"]:
                self.landed = True
                self._land()
            raise

    def __getattr__(self, name):
        return getattr(self._table, name)


def test_a_failure_receipt_racing_its_send_record_still_moves_the_status(cloud):
    # GIVEN a failure receipt whose first write finds no send recorded, and the send's record lands right then
    from loan_notify.deliveries import Deliveries
    from loan_notify.vocabulary import DeliveryStatus

    message_id = unique("race-msg")
    table = deliveries_table(cloud)

    def land():
        Deliveries(table).record_sent(message_id, notification_id=unique("N"), attempt=1, channel="SMS",
                                      provider="sns-sms@us-east-1", task_token=None, confirms=True)

    racing = _SendLandsMidReceipt(table, land)
    # WHEN the receipt is applied
    write = Deliveries(racing).add_receipt(message_id, "sns-sms:FAILED", {"status": "FAILED", "at": "t"},
                                           DeliveryStatus.FAILED)
    # THEN it is stored against the send and moved the status forward (never "failed" kept beside "sent")
    assert racing.landed
    assert write.kind == "stored" and write.status is DeliveryStatus.FAILED
    assert table.get_item(Key={"message_id": message_id})["Item"]["status"] == "FAILED"


def test_recording_a_send_puts_the_item_it_returns_and_recording_it_again_merges_into_it(cloud):
    # GIVEN a message no receipt has named yet
    from loan_notify.deliveries import Deliveries

    table, message_id = deliveries_table(cloud), unique("put-msg")
    record = {"notification_id": unique("N"), "attempt": 1, "channel": "SMS", "provider": "sms-voice@us-east-1",
              "confirms": True, "borrower_id": "B-1", "contact_ref": "ref-1"}
    # WHEN its send is recorded, then recorded again by a retried step with a new token
    first = Deliveries(table).record_sent(message_id, task_token="token-1", **record)
    stored = table.get_item(Key={"message_id": message_id}, ConsistentRead=True)["Item"]
    again = Deliveries(table).record_sent(message_id, task_token="token-2", **record)
    # THEN each call returned the item as stored: one item, first written once, its token the latest
    assert first == stored and stored["status"] == "SENT" and stored["receipts"] == {}
    assert again == table.get_item(Key={"message_id": message_id}, ConsistentRead=True)["Item"]
    assert again["task_token"] == "token-2" and again["created_at"] == stored["created_at"]
