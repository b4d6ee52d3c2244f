"""Receipt parsing: every provider signal becomes one status, with no address or number in what is kept."""

import base64
import gzip
import json

from loan_notify.receipts import parse_event, parse_ses_event, parse_sms_status
from loan_notify.vocabulary import DeliveryStatus

MAIL = {"messageId": "m-1", "timestamp": "2026-11-29T08:00:00.000Z", "destination": ["ada@example.com"]}


def test_ses_events_map_to_statuses_and_contact_effects():
    delivered = parse_ses_event({"eventType": "Delivery", "mail": MAIL, "delivery": {"timestamp": "t1"}})
    bounced = parse_ses_event({"eventType": "Bounce", "mail": MAIL, "bounce": {
        "bounceType": "Permanent", "bounceSubType": "General", "timestamp": "t2"}})
    soft = parse_ses_event({"eventType": "Bounce", "mail": MAIL, "bounce": {
        "bounceType": "Transient", "bounceSubType": "MailboxFull", "timestamp": "t3"}})
    complaint = parse_ses_event({"eventType": "Complaint", "mail": MAIL, "complaint": {"timestamp": "t4"}})
    assert (delivered.status, delivered.at) == (DeliveryStatus.DELIVERED, "t1")
    assert (bounced.status, bounced.contact_effect) == (DeliveryStatus.BOUNCED, "bounced")
    assert soft.status is DeliveryStatus.DELAYED and soft.contact_effect is None
    assert (complaint.status, complaint.contact_effect) == (DeliveryStatus.COMPLAINED, "opted_out")
    assert parse_ses_event({"eventType": "Send", "mail": MAIL}) is None
    assert all("ada@" not in r.detail for r in (delivered, bounced, soft, complaint))


def test_sms_status_records_map_by_provider_response():
    def record(status, response):
        return {"notification": {"messageId": "s-1", "timestamp": "t"}, "status": status,
                "delivery": {"destination": "+8613800138000", "providerResponse": response}}

    assert parse_sms_status(record("SUCCESS", "accepted")).status is DeliveryStatus.DELIVERED
    opted = parse_sms_status(record("FAILURE", "Phone has opted out"))
    assert (opted.status, opted.contact_effect) == (DeliveryStatus.FAILED, "opted_out")
    assert parse_sms_status(record("FAILURE", "Invalid phone number")).contact_effect == "bounced"
    assert parse_sms_status(record("FAILURE", "Phone is currently unreachable/unavailable")).status is \
        DeliveryStatus.UNKNOWN


def test_parse_event_reads_all_three_envelopes():
    sns = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(
        {"eventType": "Delivery", "mail": MAIL, "delivery": {"timestamp": "t"}})}}]}
    log = {"messageType": "DATA_MESSAGE", "logEvents": [{"id": "1", "timestamp": 1, "message": json.dumps(
        {"notification": {"messageId": "s-2", "timestamp": "t"}, "status": "SUCCESS", "delivery": {}})}]}
    logs = {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(log).encode())).decode()}}
    app = {"read_receipts": [{"message_id": "inbox-1", "read_at": "t"}]}
    assert [(r.source, r.message_id, r.status) for e in (sns, logs, app) for r in parse_event(e)] == [
        ("ses", "m-1", DeliveryStatus.DELIVERED), ("sns-sms", "s-2", DeliveryStatus.DELIVERED),
        ("app", "inbox-1", DeliveryStatus.READ)]


def test_status_ranks_only_move_forward():
    order = [DeliveryStatus.SENT, DeliveryStatus.DELAYED, DeliveryStatus.UNKNOWN, DeliveryStatus.FAILED,
             DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.COMPLAINED]
    assert [s.rank for s in order] == sorted(s.rank for s in order)
    assert DeliveryStatus.READ.confirms and DeliveryStatus.BOUNCED.fails and not DeliveryStatus.UNKNOWN.fails


def test_a_bounce_that_beats_its_send_record_still_marks_the_contact_once_the_record_lands():
    # GIVEN a bounce whose first write finds no send recorded; the record lands while the receipt waits for it
    from loan_notify.deliveries import WAITING, ReceiptWrite
    from loan_notify.receipts import ReceiptOutcome, apply_receipt

    record = {"message_id": "m-1", "notification_id": "N-1", "attempt": 1, "channel": "EMAIL", "status": "BOUNCED",
              "borrower_id": "B-1", "contact_ref": "ref-1", "task_token": "tok", "callback": WAITING,
              "receipts": {"ses:Bounce": {"status": "BOUNCED", "detail": "Permanent bounce General"}}}
    looks = []

    class Deliveries:
        def add_receipt(self, *args):
            return ReceiptWrite(ReceiptWrite.EARLY, {}, DeliveryStatus.BOUNCED, True)

        def get(self, message_id):
            looks.append(message_id)
            return record if len(looks) >= 2 else {"message_id": message_id, "early": True}

        def answered(self, message_id, token):
            record["callback"] = "DONE"

    class Ledger:
        receipts = []

        def record_receipt(self, *args):
            self.receipts.append(args)

    marked, failures = [], []

    class Contacts:
        def mark(self, borrower_id, channel, effect, contact_ref=None):
            marked.append((borrower_id, channel.value, effect, contact_ref))
            return True

    class Callbacks:
        def success(self, token, output):
            raise AssertionError("a bounce never confirms")

        def failure(self, token, error, cause):
            failures.append((token, error))
            return True

    bounce = parse_ses_event({"eventType": "Bounce", "mail": MAIL, "bounce": {
        "bounceType": "Permanent", "bounceSubType": "General", "timestamp": "t2"}})
    # WHEN it is applied
    outcome = apply_receipt(bounce, deliveries=Deliveries(), ledger=Ledger(), callbacks=Callbacks(),
                            contacts=Contacts(), sleep=lambda s: None)
    # THEN it waited for the record, marked the contact it was sent to, and answered the waiting execution
    assert len(looks) == 2
    assert marked == [("B-1", "EMAIL", "bounced", "ref-1")]
    assert failures == [("tok", "PermanentChannelError")] and outcome is ReceiptOutcome.FAILED
    assert record["callback"] == "DONE"
