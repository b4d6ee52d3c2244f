"""Receipt parsing: every provider signal becomes one status, with no address or number in what is kept."""

import json

from loan_notify.receipts import parse_event, parse_ses_event, parse_sms_event
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


def sms_event(event_type, description="", final=True):
    """An End User Messaging SMS event as its SNS event destination publishes it."""
    return {"eventType": event_type, "eventVersion": "1.0", "eventTimestamp": 1796025600000, "isFinal": final,
            "destinationPhoneNumber": "+8613800138000", "isoCountryCode": "CN", "messageId": "s-1",
            "messageStatus": event_type.removeprefix("TEXT_"), "messageStatusDescription": description}


def test_sms_events_map_to_statuses_and_contact_effects():
    delivered = parse_sms_event(sms_event("TEXT_DELIVERED", "Message has been accepted by phone"))
    assert (delivered.source, delivered.status, delivered.at) == (
        "sms-voice", DeliveryStatus.DELIVERED, "2026-11-30T08:00:00.000Z")
    opted = parse_sms_event(sms_event("TEXT_BLOCKED", "Phone has opted out"))
    assert (opted.status, opted.contact_effect) == (DeliveryStatus.FAILED, "opted_out")
    invalid = parse_sms_event(sms_event("TEXT_INVALID", "Invalid phone number"))
    assert (invalid.status, invalid.contact_effect) == (DeliveryStatus.FAILED, "bounced")
    assert parse_sms_event(sms_event("TEXT_CARRIER_UNREACHABLE")).status is DeliveryStatus.FAILED
    assert parse_sms_event(sms_event("TEXT_UNREACHABLE")).status is DeliveryStatus.UNKNOWN
    # progress is not an outcome; a final "successful" (carrier took it, no handset receipt) confirms nothing
    assert parse_sms_event(sms_event("TEXT_QUEUED", final=False)) is None
    assert parse_sms_event(sms_event("TEXT_SUCCESSFUL", final=False)) is None
    assert parse_sms_event(sms_event("TEXT_SUCCESSFUL", final=True)).status is DeliveryStatus.UNKNOWN
    assert all("+86" not in r.detail for r in (delivered, opted, invalid))


def test_parse_event_reads_every_envelope():
    ses = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(
        {"eventType": "Delivery", "mail": MAIL, "delivery": {"timestamp": "t"}})}}]}
    sms = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(sms_event("TEXT_DELIVERED"))}}]}
    app = {"read_receipts": [{"message_id": "inbox-1", "read_at": "t"}]}
    assert [(r.source, r.message_id, r.status) for e in (ses, sms, app) for r in parse_event(e)] == [
        ("ses", "m-1", DeliveryStatus.DELIVERED), ("sms-voice", "s-1", DeliveryStatus.DELIVERED),
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
