"""Notice execution domain: the steps the state machine calls, each with its ports passed in."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from loan_notify.borrowers import Borrowers, contact_ref
from loan_notify.clock import iso, utc_now
from loan_notify.deliveries import Deliveries, settled
from loan_notify.errors import (
    NoticeNotFound,
    NoticeSuperseded,
    PermanentChannelError,
    ProviderThrottled,
    SendOutcomeUnknown,
    TransientChannelError,
)
from loan_notify.ledger import Ledger
from loan_notify.models import Borrower, NoticeRef
from loan_notify.policy import POLICIES, POLICY_VERSION, channel_plan, destination, next_opening
from loan_notify.receipts import Callbacks, answer_waiting
from loan_notify.templates import TEMPLATE_VERSION, RenderedMessage, render, template_id
from loan_notify.vocabulary import FINAL_STATES, AttemptResult, Channel, DeliveryStatus, LoanStatus, NoticeState


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
            waited_until: datetime | None = None) -> dict[str, Any]:
    """Decide, for the borrower as they are now: go, wait for the send window, or stand down (superseded).

    `waited_until` is the instant a Wait state has just waited for: Step Functions guarantees it has passed,
    so it counts as "now" even when this machine's clock says otherwise (a time-compressed local run).
    Returns ids, channel names and timestamps only. Nothing is written on the usual path: the send step records
    the plan and the pinned template with its first attempt.
    """
    policy = POLICIES[ref.status]
    superseded_by = None
    if policy.supersedable and ledger is not None:
        superseded_by = ledger.newer_notice(ref.loan_id, ref.version)
        if superseded_by:
            ledger.mark_superseded(ref.notification_id, superseded_by)
    borrower = borrowers.get(ref.borrower_id)
    opted_out = not superseded_by and borrower.opt_out_non_critical and not policy.critical
    if opted_out and ledger is not None:
        ledger.stand_down(ref.notification_id, NoticeState.OPTED_OUT, "opted_out_non_critical")
    plan = [c.value for c in channel_plan(ref.status, borrower)]
    now = max(clock(), waited_until) if waited_until else clock()
    opening = None if superseded_by or opted_out else next_opening(ref.status, borrower, now)
    return {"channels": plan, "count": len(plan), "template_id": template_id(ref.status),
            "template_version": TEMPLATE_VERSION, "policy_version": POLICY_VERSION,
            "confirm_within": policy.confirm_within_s, "superseded_by": superseded_by, "opted_out": opted_out,
            "wait_until": iso(opening) if opening else None}



def _round(notice: dict[str, Any]) -> int:
    """Sends are counted in rounds: a reviewer's contact correction starts a new one (earlier sends do not count)."""
    return int(notice.get("resend_round", 0))


def _in_round(attempt: dict[str, Any], notice: dict[str, Any]) -> bool:
    if int(attempt.get("round", 0)) != _round(notice):
        return False
    # Notices recorded before rounds were counted: a contact correction is told apart by its time.
    corrected = max((a.get("at", "") for a in notice.get("human_actions", [])
                     if a.get("decision") == "contact_corrected" and "round" not in a), default="")
    return attempt.get("started_at", "") > corrected


def _settled_already(notice: dict[str, Any], callbacks: Callbacks | None, task_token: str | None
                     ) -> dict[str, Any] | None:
    """A notice already delivered (a late receipt overtook the deadline) or stood down goes no further."""
    state = NoticeState(notice.get("state", NoticeState.STARTED.value))
    if state is NoticeState.SUPERSEDED:
        raise NoticeSuperseded(f"superseded by {notice.get('superseded_by')}")
    if state not in FINAL_STATES:
        return None
    result = {"status": state.value, "already": True}
    if callbacks and task_token:
        callbacks.success(task_token, result)
    return result


def send(ref: NoticeRef, channel: Channel, *, ledger: Ledger, borrowers: Borrowers,
         senders: dict[Channel, list[Sender]], deliveries: Deliveries | None = None,
         callbacks: Callbacks | None = None, task_token: str | None = None, plan: list[str] | None = None,
         clock=utc_now) -> dict[str, Any]:
    """Send the notice on one channel, through its providers in order, each try recorded before and after.

    Before anything goes out the notice is read: delivered meanwhile (a late receipt) or stood down, it ends here.
    Each provider call is preceded by a "pending attempt" record: a retried step that finds one cannot know
    whether the provider took the message, so it records OUTCOME_UNKNOWN and hands the notice to a person instead
    of sending again. A provider that is down (5xx, unreachable) hands over to the next provider of the channel;
    a throttle is a wait (raised as ProviderThrottled, no failover, nothing recorded but a count); a permanent
    failure (the contact itself is bad) is raised at once.

    With a task token the execution waits for the delivery receipt, found through the message id. A provider that
    can send no receipt cannot confirm: a critical notice moves on to its next channel, another one ends
    SENT_UNCONFIRMED. Idempotent: a step retried after its send finds the attempt and waits on the same message.
    """
    notice = _notice(ledger, ref.notification_id)
    done = _settled_already(notice, callbacks, task_token)
    if done is not None:
        return done
    policy = POLICIES[ref.status]
    pending = notice.get("pending_attempt")
    if pending:  # an earlier try of this step stopped between "about to send" and its record
        ledger.append_attempt(ref.notification_id, {
            **pending, "result": AttemptResult.OUTCOME_UNKNOWN.value, "error": "step_interrupted",
            "finished_at": iso(clock())})
        notice = _notice(ledger, ref.notification_id)
    this_round = [a for a in notice.get("attempts", []) if _in_round(a, notice)]
    if any(a.get("result") == AttemptResult.OUTCOME_UNKNOWN.value for a in this_round):
        raise SendOutcomeUnknown("a provider may already have this notice; a person decides",
                                 reason="send_outcome_unknown")
    for attempt in this_round:
        if attempt.get("channel") == channel.value and attempt.get("result") == AttemptResult.SENT.value:
            return _replay(ref, attempt, ledger, deliveries, callbacks, task_token, policy.critical)
    if notice.get("attempts") and policy.supersedable:
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
        attempt: dict[str, Any] = {
            "attempt": attempt_no, "round": _round(notice), "channel": channel.value, "provider": sender.provider,
            "started_at": iso(clock()), "template_id": message.template_id,
            "template_version": message.template_version, "content_hash": message.content_hash}
        ledger.begin_attempt(ref.notification_id, attempt)
        try:
            delivery = sender.send(address, message)
        except ProviderThrottled:
            ledger.drop_pending(ref.notification_id, attempt_no, throttled=True)
            raise
        except (PermanentChannelError, SendOutcomeUnknown) as err:
            result = (AttemptResult.FAILED_PERMANENT if isinstance(err, PermanentChannelError)
                      else AttemptResult.OUTCOME_UNKNOWN)
            attempt.update(result=result.value, error=err.reason, finished_at=iso(clock()))
            ledger.append_attempt(ref.notification_id, attempt, pinned=pinned)
            raise
        except TransientChannelError as err:
            attempt.update(result=AttemptResult.FAILED_TRANSIENT.value, error=err.reason, finished_at=iso(clock()))
            ledger.append_attempt(ref.notification_id, attempt, pinned=pinned)
            last_error = err
            continue
        attempt.update(result=AttemptResult.SENT.value, message_id=delivery.message_id,
                       destination=delivery.destination, finished_at=iso(clock()),
                       delivery_status=DeliveryStatus.SENT.value, delivery_rank=DeliveryStatus.SENT.rank,
                       receipts={}, confirms=sender.confirms)
        unconfirmed = not sender.confirms and not policy.critical
        ledger.append_attempt(ref.notification_id, attempt, pinned=pinned,
                              state=NoticeState.SENT_UNCONFIRMED if unconfirmed else NoticeState.SENT)
        contact = contact_ref(ref.borrower_id, address if channel is not Channel.INBOX else None)
        return _await(ref, attempt, contact, ledger, deliveries, callbacks, task_token, policy.critical,
                      replayed=False)
    if last_error is None:
        raise PermanentChannelError(f"no provider configured for {channel.value}", reason="channel_not_configured")
    raise TransientChannelError(f"every {channel.value} provider failed: {last_error}", reason=last_error.reason)


def _replay(ref: NoticeRef, attempt: dict[str, Any], ledger: Ledger, deliveries: Deliveries | None,
            callbacks: Callbacks | None, task_token: str | None, critical: bool) -> dict[str, Any]:
    """A retried step found its message already sent: wait on the same message with the new token."""
    existing = deliveries.get(attempt["message_id"]) if deliveries else None
    contact = (existing or {}).get("contact_ref", "")
    return _await(ref, attempt, contact, ledger, deliveries, callbacks, task_token, critical, replayed=True)


def _await(ref: NoticeRef, attempt: dict[str, Any], contact: str, ledger: Ledger, deliveries: Deliveries | None,
           callbacks: Callbacks | None, task_token: str | None, critical: bool, *, replayed: bool
           ) -> dict[str, Any]:
    """Hand the waiting token to the message's record, and answer at once what is already known: a receipt that
    came before this record, or a provider that will never send one."""
    result = {"channel": attempt["channel"], "provider": attempt["provider"], "message_id": attempt["message_id"],
              "replayed": replayed}
    confirms = bool(attempt.get("confirms", True))
    if deliveries is None:
        return result
    item = deliveries.record_sent(attempt["message_id"], notification_id=ref.notification_id,
                                  attempt=int(attempt["attempt"]), channel=attempt["channel"],
                                  provider=attempt["provider"], task_token=task_token, confirms=confirms,
                                  borrower_id=ref.borrower_id, contact_ref=contact)
    if not task_token or callbacks is None:
        return result
    if item.get("receipts"):  # receipts were here before this record (or before this retry): apply them
        status = DeliveryStatus(item["status"])
        for kind, receipt in sorted(item["receipts"].items(), key=lambda kv: kv[1].get("at", "")):
            stored = {k: v for k, v in receipt.items() if k != "rid"}
            ledger.record_receipt(ref.notification_id, int(attempt["attempt"]), kind, stored, status)
    if settled(item):
        answer_waiting(item, deliveries=deliveries, callbacks=callbacks)
    elif not confirms:
        # No receipt will ever come from this provider.
        if critical:
            callbacks.failure(task_token, "UnconfirmableChannel",
                              f"{attempt['provider']} cannot confirm delivery; trying the next channel")
        else:
            callbacks.failure(task_token, "SentUnconfirmed", f"{attempt['provider']} cannot confirm delivery")
        deliveries.answered(attempt["message_id"], task_token)
    return result
