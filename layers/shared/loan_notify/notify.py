"""Notice execution domain: the steps the state machine calls, each with its ports passed in."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from loan_notify.borrowers import Borrowers
from loan_notify.clock import iso, utc_now
from loan_notify.deliveries import Deliveries
from loan_notify.errors import (
    BorrowerNotFound,
    NoticeNotFound,
    NoticeSuperseded,
    PermanentChannelError,
    TransientChannelError,
)
from loan_notify.ledger import Ledger
from loan_notify.models import Borrower, NoticeRef
from loan_notify.policy import (
    BORROWER_WAIT_SECONDS,
    POLICIES,
    POLICY_VERSION,
    borrower_retry_at,
    channel_plan,
    destination,
    next_opening,
)
from loan_notify.receipts import Callbacks
from loan_notify.templates import TEMPLATE_VERSION, RenderedMessage, render, template_id
from loan_notify.vocabulary import AttemptResult, Channel, DeliveryStatus, LoanStatus, NoticeState


class Sender(Protocol):
    provider: str
    confirms: bool  # does this provider send delivery receipts we ingest?

    def send(self, destination: str | None, message: RenderedMessage) -> Any: ...


def _notice(ledger: Ledger, notification_id: str) -> dict[str, Any]:
    item = ledger.get(notification_id)
    if item is None:
        raise NoticeNotFound(f"notice {notification_id} is not in the ledger")
    return item


def _render(notice: dict[str, Any], borrower: Borrower) -> RenderedMessage:
    return render(
        LoanStatus(notice["status"]),
        borrower.locale,
        name=borrower.name,
        loan_id=notice["loan_id"],
        amount=notice.get("amount"),
        currency=notice.get("currency"),
        reason=notice.get("status_reason"),
    )


def prepare(ref: NoticeRef, *, borrowers: Borrowers, ledger: Ledger | None = None, clock=utc_now,
            waited_until: datetime | None = None, borrower_wait_s: int = BORROWER_WAIT_SECONDS) -> dict[str, Any]:
    """Decide, for the borrower as they are now: go, wait for the send window, or stand down (superseded).

    `waited_until` is the instant a Wait state has just waited for: Step Functions guarantees it has passed,
    so it counts as "now" even when this machine's clock says otherwise (a time-compressed local run).
    A borrower row that does not exist yet is waited for (`borrower_missing`, `wait_until` the next look) until
    `borrower_wait_s` after it was first missed (recorded in the ledger); then BorrowerNotFound is raised and the
    state machine opens a review case.
    Returns ids, channel names and timestamps only. Nothing is written on the usual path: the send step records
    the plan and the pinned template with its first attempt.
    """
    policy = POLICIES[ref.status]
    now = max(clock(), waited_until) if waited_until else clock()
    plan: dict[str, Any] = {"channels": [], "count": 0, "template_id": template_id(ref.status),
                            "template_version": TEMPLATE_VERSION, "policy_version": POLICY_VERSION,
                            "confirm_within": policy.confirm_within_s, "superseded_by": None, "opted_out": False,
                            "borrower_missing": False, "wait_until": None}
    if policy.supersedable and ledger is not None:
        plan["superseded_by"] = ledger.newer_notice(ref.loan_id, ref.version)
        if plan["superseded_by"]:
            ledger.mark_superseded(ref.notification_id, plan["superseded_by"])
    try:
        borrower = borrowers.get(ref.borrower_id)
    except BorrowerNotFound:
        if plan["superseded_by"]:
            return plan
        if ledger is None:
            raise
        look_again = borrower_retry_at(ledger.borrower_missing(ref.notification_id, now), now, borrower_wait_s)
        if look_again is None:
            raise BorrowerNotFound(f"borrower {ref.borrower_id} still missing after {borrower_wait_s}s") from None
        return {**plan, "borrower_missing": True, "wait_until": iso(look_again)}
    plan["opted_out"] = not plan["superseded_by"] and borrower.opt_out_non_critical and not policy.critical
    if plan["opted_out"] and ledger is not None:
        ledger.stand_down(ref.notification_id, NoticeState.OPTED_OUT, "opted_out_non_critical")
    plan["channels"] = [c.value for c in channel_plan(ref.status, borrower)]
    plan["count"] = len(plan["channels"])
    if not (plan["superseded_by"] or plan["opted_out"]):
        opening = next_opening(ref.status, borrower, now, spread_key=ref.notification_id)
        plan["wait_until"] = iso(opening) if opening else None
    return plan


def send(ref: NoticeRef, channel: Channel, *, ledger: Ledger, borrowers: Borrowers,
         senders: dict[Channel, list[Sender]], deliveries: Deliveries | None = None,
         callbacks: Callbacks | None = None, task_token: str | None = None, plan: list[str] | None = None,
         clock=utc_now) -> dict[str, Any]:
    """Send the notice on one channel, through its providers in order, and append each try to the ledger.

    A provider that fails transiently (down, throttled, timing out) hands over to the next provider of the
    same channel at once; when every provider failed transiently the error is raised for the state machine to
    retry with backoff. A permanent failure (the contact itself is bad) is raised at once.

    With a task token the execution waits for the delivery receipt: the message is recorded under its
    provider message id so the receipt finds the token. A provider that sends no receipts confirms at once
    (recorded as unconfirmed). Idempotent: if a previous invocation already sent on this channel (a retried
    step), nothing is sent again; the new token waits on the same message.
    """
    notice = _notice(ledger, ref.notification_id)
    # After a reviewer corrected the contact, earlier sends do not count: this is a new round.
    resend_after = max((a.get("at", "") for a in notice.get("human_actions", [])
                        if a.get("decision") == "contact_corrected"), default="")
    for attempt in notice.get("attempts", []):
        if (attempt.get("channel") == channel.value and attempt.get("result") == AttemptResult.SENT.value
                and attempt.get("started_at", "") > resend_after):
            result = {"channel": channel.value, "provider": attempt["provider"],
                      "message_id": attempt["message_id"], "replayed": True}
            if deliveries and callbacks and task_token:
                _rearm(deliveries, callbacks, attempt["message_id"], task_token, result)
            return result
    if notice.get("attempts") and POLICIES[ref.status].supersedable:
        # Retrying or falling back: if the loan has moved on meanwhile, this notice stands down.
        newer = ledger.newer_notice(ref.loan_id, ref.version)
        if newer:
            ledger.mark_superseded(ref.notification_id, newer)
            raise NoticeSuperseded(f"superseded by {newer}")
    borrower = borrowers.get(ref.borrower_id)
    message = _render(notice, borrower)
    address = destination(channel, borrower)
    pinned = {"plan": plan if plan is not None else [channel.value], "policy_version": POLICY_VERSION,
              "template_id": message.template_id, "template_version": message.template_version,
              "content_hash": message.content_hash}
    attempt_no = len(notice.get("attempts", []))
    last_error: TransientChannelError | None = None
    for sender in senders.get(channel, []):
        attempt_no += 1
        attempt = {"attempt": attempt_no, "channel": channel.value, "provider": sender.provider,
                   "started_at": iso(clock()), "template_id": message.template_id,
                   "template_version": message.template_version, "content_hash": message.content_hash}
        try:
            delivery = sender.send(address, message)
        except PermanentChannelError as err:
            attempt.update(result=AttemptResult.FAILED_PERMANENT.value, error=err.reason, finished_at=iso(clock()))
            ledger.append_attempt(ref.notification_id, attempt, pinned=pinned)
            raise
        except TransientChannelError as err:
            attempt.update(result=AttemptResult.FAILED_TRANSIENT.value, error=err.reason, finished_at=iso(clock()))
            ledger.append_attempt(ref.notification_id, attempt, pinned=pinned)
            last_error = err
            continue
        attempt.update(result=AttemptResult.SENT.value, message_id=delivery.message_id,
                       destination=delivery.destination, finished_at=iso(clock()),
                       delivery_status=DeliveryStatus.SENT.value)
        if deliveries is not None:
            deliveries.record_sent(delivery.message_id, notification_id=ref.notification_id, attempt=attempt_no,
                                   channel=channel.value, provider=delivery.provider, task_token=task_token,
                                   confirms=sender.confirms)
        ledger.append_attempt(ref.notification_id, attempt, state=NoticeState.SENT, pinned=pinned)
        result = {"channel": channel.value, "provider": delivery.provider, "message_id": delivery.message_id,
                  "replayed": False}
        if task_token and callbacks and not sender.confirms:
            # No receipts will come from this provider: report now rather than wait for the deadline.
            assert deliveries is not None
            if deliveries.claim_callback(delivery.message_id):
                callbacks.success(task_token, {**result, "status": "SENT", "confirmation": "unavailable"})
        return result
    if last_error is None:
        raise PermanentChannelError(f"no provider configured for {channel.value}", reason="channel_not_configured")
    raise TransientChannelError(f"every {channel.value} provider failed: {last_error}", reason=last_error.reason)


def _rearm(deliveries: Deliveries, callbacks: Callbacks, message_id: str, token: str, result: dict[str, Any]) -> None:
    item = deliveries.rearm(message_id, token)
    status = DeliveryStatus(item.get("status", DeliveryStatus.SENT.value))
    settled = status.confirms or status.fails or not item.get("confirms", True)
    if settled and deliveries.claim_callback(message_id):
        if status.fails:
            callbacks.failure(token, "PermanentChannelError", status.value)
        else:
            callbacks.success(token, {**result, "status": status.value})
