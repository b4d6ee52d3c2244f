"""Delivery confirmation: every provider signal, normalised into one forward-only status per message.

Sources, each parsed here into `Receipt`s:
- SES events (configuration set -> SNS topic): Delivery, Bounce, Complaint, DeliveryDelay, Reject, Open, Click.
- SNS SMS delivery status records (the `DirectPublishToPhoneNumber` delivery-status log, delivered by a
  CloudWatch Logs subscription): SUCCESS / FAILURE with the carrier's provider response.
- App read acknowledgements (`{"read_receipts": [{"message_id": ..., "read_at": ...}]}`).

Receipts arrive late, twice and out of order: the status only moves forward, a receipt is stored once, the
waiting execution is called back once, and a receipt for an execution that already moved on is still stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from loan_notify.clock import iso, utc_now
from loan_notify.deliveries import Deliveries, ReceiptWrite
from loan_notify.ledger import Ledger
from loan_notify.vocabulary import Channel, DeliveryStatus


@dataclass(frozen=True)
class Receipt:
    source: str
    message_id: str
    status: DeliveryStatus
    at: str
    detail: str = ""  # never an address or a number: bounce type, carrier response
    contact_effect: str | None = None  # "bounced" | "opted_out": written back to the borrower's contact health

    @property
    def key(self) -> str:
        return f"{self.source}:{self.status.value}:{self.at}"

    def as_item(self, received_at: str) -> dict[str, Any]:
        return {"source": self.source, "status": self.status.value, "at": self.at, "detail": self.detail,
                "received_at": received_at}


class ReceiptOutcome(StrEnum):
    CONFIRMED = "confirmed"  # the waiting execution was told the notice is delivered
    FAILED = "failed"  # the waiting execution was told to move to the next channel
    RECORDED = "recorded"  # stored; nobody was waiting or the status does not settle anything
    LATE = "late"  # stored; the execution had already moved on (deadline passed)
    DUPLICATE = "duplicate"
    UNKNOWN_MESSAGE = "unknown_message"  # not a message this stack sent


# ------------------------------------------------------------------ parsing
_SES_STATUS = {
    "Delivery": DeliveryStatus.DELIVERED,
    "Complaint": DeliveryStatus.COMPLAINED,
    "DeliveryDelay": DeliveryStatus.DELAYED,
    "Reject": DeliveryStatus.FAILED,
    "RenderingFailure": DeliveryStatus.FAILED,
    "Open": DeliveryStatus.READ,
    "Click": DeliveryStatus.READ,
}


def parse_ses_event(event: dict[str, Any]) -> Receipt | None:
    kind = event.get("eventType") or event.get("notificationType")
    message_id = (event.get("mail") or {}).get("messageId")
    if not kind or not message_id or kind == "Send":
        return None
    body = event.get(kind[0].lower() + kind[1:]) or {}
    at = body.get("timestamp") or (event.get("mail") or {}).get("timestamp") or iso(utc_now())
    if kind == "Bounce":
        bounce_type, sub_type = body.get("bounceType", "Undetermined"), body.get("bounceSubType", "")
        if bounce_type == "Transient":  # mailbox full, message too large: SES keeps trying
            return Receipt("ses", message_id, DeliveryStatus.DELAYED, at, f"transient bounce {sub_type}")
        return Receipt("ses", message_id, DeliveryStatus.BOUNCED, at, f"{bounce_type} bounce {sub_type}".strip(),
                       contact_effect="bounced")
    status = _SES_STATUS.get(kind)
    if status is None:
        return None
    detail = {"Delivery": "accepted by the receiving mail server", "Complaint": "marked as spam",
              "DeliveryDelay": body.get("delayType", "delayed"), "Reject": "rejected by SES"}.get(kind, kind.lower())
    return Receipt("ses", message_id, status, at, detail,
                   contact_effect="opted_out" if status is DeliveryStatus.COMPLAINED else None)


_SMS_OPTED_OUT = ("opted out",)
_SMS_BAD_NUMBER = ("invalid phone number", "not a valid", "invalid destination")
_SMS_UNKNOWN = ("unreachable", "unavailable", "no receipt", "ttl expired")


def parse_sms_status(record: dict[str, Any]) -> Receipt | None:
    notification = record.get("notification") or {}
    message_id = notification.get("messageId")
    if not message_id:
        return None
    at = notification.get("timestamp") or iso(utc_now())
    response = str((record.get("delivery") or {}).get("providerResponse", ""))
    if record.get("status") == "SUCCESS":
        return Receipt("sns-sms", message_id, DeliveryStatus.DELIVERED, at, response)
    lowered = response.lower()
    if any(s in lowered for s in _SMS_OPTED_OUT):
        return Receipt("sns-sms", message_id, DeliveryStatus.FAILED, at, response, contact_effect="opted_out")
    if any(s in lowered for s in _SMS_BAD_NUMBER):
        return Receipt("sns-sms", message_id, DeliveryStatus.FAILED, at, response, contact_effect="bounced")
    if any(s in lowered for s in _SMS_UNKNOWN):
        return Receipt("sns-sms", message_id, DeliveryStatus.UNKNOWN, at, response)
    return Receipt("sns-sms", message_id, DeliveryStatus.FAILED, at, response)


def parse_event(event: dict[str, Any]) -> Iterator[Receipt]:
    """Every receipt in a Lambda event from the SES events topic, the SMS status log, or the app."""
    for record in event.get("Records", []):
        sns = record.get("Sns") or {}
        try:
            message = json.loads(sns.get("Message", "{}"))
        except ValueError:
            continue
        receipt = parse_ses_event(message) if isinstance(message, dict) else None
        if receipt:
            yield receipt
    if "awslogs" in event:
        from aws_lambda_powertools.utilities.data_classes import CloudWatchLogsEvent

        for log_event in CloudWatchLogsEvent(event).parse_logs_data().log_events:
            try:
                record = json.loads(log_event.message)
            except ValueError:
                continue
            receipt = parse_sms_status(record) if isinstance(record, dict) else None
            if receipt:
                yield receipt
    for read in event.get("read_receipts", []):
        if read.get("message_id"):
            yield Receipt("app", read["message_id"], DeliveryStatus.READ, read.get("read_at") or iso(utc_now()),
                          "opened in the app")


# ------------------------------------------------------------------ applying
class Callbacks(Protocol):
    def success(self, token: str, output: dict[str, Any]) -> bool: ...

    def failure(self, token: str, error: str, cause: str) -> bool: ...


class ContactHealth(Protocol):
    def mark(self, borrower_id: str, channel: Channel, effect: str) -> None: ...


def apply_receipt(receipt: Receipt, *, deliveries: Deliveries, ledger: Ledger, callbacks: Callbacks,
                  contacts: ContactHealth, clock=utc_now) -> ReceiptOutcome:
    write = deliveries.add_receipt(receipt.message_id, receipt.key, receipt.as_item(iso(clock())), receipt.status)
    if write.kind == ReceiptWrite.UNKNOWN:
        return ReceiptOutcome.UNKNOWN_MESSAGE
    if write.kind == ReceiptWrite.DUPLICATE:
        return ReceiptOutcome.DUPLICATE
    item = write.before
    notification_id = item["notification_id"]
    ledger.record_receipt(notification_id, int(item["attempt"]), receipt.as_item(iso(clock())), write.status)

    if receipt.contact_effect:
        notice = ledger.get(notification_id) or {}
        if notice.get("borrower_id"):
            contacts.mark(notice["borrower_id"], Channel(item["channel"]), receipt.contact_effect)

    if write.kind == ReceiptWrite.KEPT or write.token is None:
        return ReceiptOutcome.RECORDED  # older signal, or nobody waits (any more)
    if write.status.confirms:
        told = callbacks.success(write.token, {"status": write.status.value, "message_id": receipt.message_id,
                                               "channel": item["channel"], "provider": item["provider"]})
        return ReceiptOutcome.CONFIRMED if told else ReceiptOutcome.LATE
    told = callbacks.failure(write.token, "PermanentChannelError", f"{write.status.value}: {receipt.detail}"[:250])
    return ReceiptOutcome.FAILED if told else ReceiptOutcome.LATE
