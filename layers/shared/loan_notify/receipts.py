"""Delivery confirmation: every provider signal, normalised into one forward-only status per message.

Sources, each parsed here into `Receipt`s:
- SES events (configuration set -> SNS topic): Delivery, Bounce, Complaint, DeliveryDelay, Reject, Open, Click.
- End User Messaging SMS events (configuration set -> SNS topic): TEXT_DELIVERED, or a failure event
  (TEXT_INVALID, TEXT_BLOCKED, TEXT_CARRIER_UNREACHABLE...) with the carrier's description.
- App read acknowledgements (`{"read_receipts": [{"message_id": ..., "read_at": ...}]}`).

Receipts arrive late, twice, out of order and even before the send is recorded: the status only moves forward,
the first receipt of each kind is stored once (later ones counted), the waiting execution is answered once, and a
receipt for an execution that already moved on still brings the ledger forward (a late "delivered" stops the chain:
the next step reads the notice first).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, Protocol

from loan_notify.clock import iso, utc_now
from loan_notify.deliveries import WAITING, Deliveries, ReceiptWrite, settled
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
    event: str = ""  # the provider's kind of event (Delivery, Open, Click...); the status when empty

    @property
    def kind(self) -> str:
        """What is kept once per message: the first receipt of each kind (later opens and clicks are counted)."""
        return f"{self.source}:{self.event or self.status.value}"

    def as_item(self, received_at: str) -> dict[str, Any]:
        return {"source": self.source, "status": self.status.value, "at": self.at, "detail": self.detail,
                "received_at": received_at}


class ReceiptOutcome(StrEnum):
    CONFIRMED = "confirmed"  # the waiting execution was told the notice is delivered
    FAILED = "failed"  # the waiting execution was told to move to the next channel
    RECORDED = "recorded"  # stored; nobody was waiting or the status does not settle anything
    LATE = "late"  # stored; the execution had already moved on (deadline passed)
    DUPLICATE = "duplicate"  # the same kind of receipt was already stored and everything it implies was done
    EARLY = "early"  # the send is not recorded yet (or is not ours): kept, applied when the send's record lands


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
            return Receipt("ses", message_id, DeliveryStatus.DELAYED, at, f"transient bounce {sub_type}",
                           event="TransientBounce")
        return Receipt("ses", message_id, DeliveryStatus.BOUNCED, at, f"{bounce_type} bounce {sub_type}".strip(),
                       contact_effect="bounced", event=kind)
    status = _SES_STATUS.get(kind)
    if status is None:
        return None
    detail = {"Delivery": "accepted by the receiving mail server", "Complaint": "marked as spam",
              "DeliveryDelay": body.get("delayType", "delayed"), "Reject": "rejected by SES"}.get(kind, kind.lower())
    return Receipt("ses", message_id, status, at, detail,
                   contact_effect="opted_out" if status is DeliveryStatus.COMPLAINED else None, event=kind)


# End User Messaging SMS event types -> status. TEXT_QUEUED, TEXT_PENDING, TEXT_SENT and a non-final TEXT_SUCCESSFUL
# are progress, not outcomes. A final TEXT_SUCCESSFUL (the carrier took it, and the country sends no handset
# receipt) confirms nothing: UNKNOWN, and the confirmation deadline decides.
_SMS_STATUS = {
    "TEXT_DELIVERED": DeliveryStatus.DELIVERED,
    "TEXT_INVALID": DeliveryStatus.FAILED,
    "TEXT_INVALID_MESSAGE": DeliveryStatus.FAILED,
    "TEXT_BLOCKED": DeliveryStatus.FAILED,
    "TEXT_CARRIER_BLOCKED": DeliveryStatus.FAILED,
    "TEXT_CARRIER_UNREACHABLE": DeliveryStatus.FAILED,
    "TEXT_SPAM": DeliveryStatus.FAILED,
    "TEXT_PROTECT_BLOCKED": DeliveryStatus.FAILED,
    "TEXT_UNREACHABLE": DeliveryStatus.UNKNOWN,
    "TEXT_TTL_EXPIRED": DeliveryStatus.UNKNOWN,
    "TEXT_UNKNOWN": DeliveryStatus.UNKNOWN,
}
_SMS_OPTED_OUT = ("opted out", "opted-out", "opt out")


def parse_sms_event(event: dict[str, Any]) -> Receipt | None:
    """An End User Messaging SMS event (as its SNS event destination publishes it)."""
    kind, message_id = event.get("eventType", ""), event.get("messageId")
    if not message_id or not kind.startswith("TEXT_"):
        return None
    status = _SMS_STATUS.get(kind)
    if kind == "TEXT_SUCCESSFUL" and event.get("isFinal"):
        status = DeliveryStatus.UNKNOWN
    if status is None:
        return None
    timestamp = event.get("eventTimestamp")
    at = (iso(datetime.fromtimestamp(timestamp / 1000, timezone.utc)) if isinstance(timestamp, int | float)
          else iso(utc_now()))
    detail = str(event.get("messageStatusDescription") or event.get("messageStatus") or kind)
    effect = None
    if kind == "TEXT_INVALID":
        effect = "bounced"  # the number cannot receive texts
    elif kind in ("TEXT_BLOCKED", "TEXT_CARRIER_BLOCKED") and any(s in detail.lower() for s in _SMS_OPTED_OUT):
        effect = "opted_out"
    return Receipt("sms-voice", message_id, status, at, detail, contact_effect=effect, event=kind)


def parse_event(event: dict[str, Any]) -> Iterator[Receipt]:
    """Every receipt in a Lambda event from the SES or SMS events topics, or from the app."""
    for record in event.get("Records", []):
        sns = record.get("Sns") or {}
        try:
            message = json.loads(sns.get("Message", "{}"))
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        receipt = parse_sms_event(message) if "eventType" in message and "mail" not in message \
            else parse_ses_event(message)
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
    def mark(self, borrower_id: str, channel: Channel, effect: str, contact_ref: str | None = None) -> bool: ...


def answer_waiting(item: dict[str, Any], *, deliveries: Deliveries, callbacks: Callbacks) -> ReceiptOutcome | None:
    """Tell the execution waiting on this message how it ended, if it has ended and nobody told it yet.

    Safe to repeat: Step Functions answers a second call on a used token with "gone" (False here), and the
    token is marked answered only after the call, so a failure in between is finished by the next try.
    """
    token = item.get("task_token")
    if not token or item.get("callback") != WAITING or not settled(item):
        return None
    status = DeliveryStatus(item["status"])
    if status.confirms:
        told = callbacks.success(token, {"status": status.value, "message_id": item["message_id"],
                                         "channel": item.get("channel"), "provider": item.get("provider")})
    else:
        detail = next((r.get("detail", "") for r in (item.get("receipts") or {}).values()
                       if r.get("status") == status.value), "")
        told = callbacks.failure(token, "PermanentChannelError", f"{status.value}: {detail}"[:250])
    deliveries.answered(item["message_id"], token)
    if not told:
        return ReceiptOutcome.LATE
    return ReceiptOutcome.CONFIRMED if status.confirms else ReceiptOutcome.FAILED


# How long a receipt that beat its send's record waits for that record (seconds between looks). The record lands
# a moment after the provider accepted the message, so this is short; a send that never records is not ours.
EARLY_RECORD_WAITS = (0.05, 0.1, 0.25, 0.5, 1.0)


def apply_receipt(receipt: Receipt, *, deliveries: Deliveries, ledger: Ledger, callbacks: Callbacks,
                  contacts: ContactHealth, clock=utc_now,
                  on_late_delivery: Callable[[str], Any] | None = None,
                  on_confirmed: Callable[[str], Any] | None = None,
                  early_waits: tuple[float, ...] = EARLY_RECORD_WAITS,
                  sleep: Callable[[float], None] = time.sleep) -> ReceiptOutcome:
    """Store the receipt, bring the ledger forward, write a bounce back to the contact it was sent to, and answer
    the waiting execution. Every step is idempotent, so a redelivered or retried receipt finishes what an
    interrupted one started. `on_confirmed(channel)` is called once per message whose waiting execution was told
    it is delivered.

    A receipt that arrives before its send is recorded is kept on the message (the sender applies its status to
    the ledger when the record lands); it then waits briefly for that record and does the rest itself, since only
    the receipt knows what it means for the borrower's contact (a bounce, an opt-out)."""
    stored = receipt.as_item(iso(clock()))
    write = deliveries.add_receipt(receipt.message_id, receipt.kind, stored, receipt.status)
    if write.kind == ReceiptWrite.EARLY:
        item = None
        for wait in early_waits:
            sleep(wait)
            item = deliveries.get(receipt.message_id)
            if item and item.get("notification_id"):
                break
        if not item or not item.get("notification_id"):
            return ReceiptOutcome.EARLY
        write = ReceiptWrite(ReceiptWrite.STORED, item, DeliveryStatus(item["status"]), True)
    item = write.item
    ledger.record_receipt(item["notification_id"], int(item["attempt"]), receipt.kind, stored, write.status)
    if receipt.contact_effect and write.new and item.get("borrower_id"):
        # Only the contact the message went to: after a change of number, a late bounce for the old one is moot.
        contacts.mark(item["borrower_id"], Channel(item["channel"]), receipt.contact_effect,
                      contact_ref=item.get("contact_ref") or None)
    outcome = answer_waiting(item, deliveries=deliveries, callbacks=callbacks)
    if outcome is ReceiptOutcome.CONFIRMED and on_confirmed is not None:
        on_confirmed(str(item.get("channel", "")))
    if write.status.confirms and outcome is not ReceiptOutcome.CONFIRMED and on_late_delivery is not None:
        # Nobody waited on this message any more: the execution moved on, perhaps to a person. Their case closes.
        on_late_delivery(item["notification_id"])
    if outcome is not None:
        return outcome
    return ReceiptOutcome.RECORDED if write.new else ReceiptOutcome.DUPLICATE
