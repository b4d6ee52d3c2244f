"""Notice execution domain: the steps the state machine calls, each with its ports passed in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from loan_notify.borrowers import Borrowers, contact_ref
from loan_notify.clock import iso, utc_now
from loan_notify.deliveries import Deliveries, settled
from loan_notify.errors import (
    AttemptRaced,
    BorrowerNotFound,
    NoticeAlreadySettled,
    NoticeNotFound,
    NoticeSuperseded,
    PaceWait,
    PermanentChannelError,
    ProviderThrottled,
    SendOutcomeUnknown,
    SendWindowClosed,
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
    window_closes_at,
)
from loan_notify.receipts import Callbacks, answer_waiting
from loan_notify.templates import (
    DEFAULT_SMS_SEGMENT_BUDGET,
    RenderedMessage,
    SmsMessage,
    render,
    template_id,
    template_version,
)
from loan_notify.vocabulary import FINAL_STATES, AttemptResult, Channel, DeliveryStatus, LoanStatus, NoticeState

# A copy of a send that lost the race to begin its attempt (the outbox delivered the message twice) reads the notice
# again after this long: by then the other copy has usually recorded its message, which is then replayed.
RACED_RETRY_S = 1.0
# ... unless the other copy is calling the provider right now (its attempt is pending): then after longer than a
# provider call can take, so the retry finds the message recorded instead of an attempt whose outcome looks unknown.
IN_FLIGHT_RETRY_S = 30.0
# The contact reference of a message whose contact is not known (a replayed send's record): matches no contact.
UNKNOWN_CONTACT = "unknown"


class Sender(Protocol):
    provider: str
    confirms: bool  # does this provider send delivery receipts we ingest?

    def send(self, destination: str | None, message: Any) -> Any:
        """`message` is the RenderedMessage, or for an SMS provider its SmsMessage (text shaped for the destination
        country, with the registered template and entity ids its carriers need)."""


def _notice(ledger: Ledger, notification_id: str) -> dict[str, Any]:
    item = ledger.get(notification_id)
    if item is None:
        raise NoticeNotFound(f"notice {notification_id} is not in the ledger")
    return item


def _render(notice: dict[str, Any], borrower: Borrower, *, preferences_url: str | None = None,
            unsubscribe: Callable[[str, str], str] | None = None,
            sms_segments: int = DEFAULT_SMS_SEGMENT_BUDGET) -> RenderedMessage:
    link = None
    if preferences_url:  # the borrower's preferences, for this notice (the email footer's link)
        query = urlencode({"notice": notice["notification_id"]})
        link = f"{preferences_url}{'&' if '?' in preferences_url else '?'}{query}"
    critical = POLICIES[LoanStatus(notice["status"])].critical
    # the one-click unsubscribe URL (signed for this borrower and notice): non-critical email only
    one_click = unsubscribe(borrower.borrower_id, notice["notification_id"]) if unsubscribe and not critical else None
    return render(
        LoanStatus(notice["status"]),
        borrower.locale,
        name=borrower.name,
        loan_id=notice["loan_id"],
        amount=notice.get("amount"),
        currency=notice.get("currency"),
        reason=notice.get("status_reason"),
        phone=borrower.phone,
        preferences_url=link,
        unsubscribe_url=one_click,
        sms_segments=sms_segments,
    )


def _for_channel(message: RenderedMessage, channel: Channel) -> RenderedMessage | SmsMessage:
    """What the channel's provider gets: the SMS as shaped for its destination, or the whole rendering."""
    if channel is Channel.SMS:
        if message.sms is None:
            raise PermanentChannelError("no phone number on file", reason="no_contact")
        return message.sms
    return message


def _sms_fields(message: RenderedMessage, channel: Channel) -> dict[str, Any]:
    """Recorded on an SMS attempt: how it was encoded and how many parts the carrier sends (and bills)."""
    if channel is not Channel.SMS or message.sms is None:
        return {}
    fields: dict[str, Any] = {"sms_encoding": message.sms.encoding.value, "sms_segments": message.sms.segments,
                              "sms_country": message.sms.country}
    if message.sms.template_id:
        fields["sms_template_id"] = message.sms.template_id
    return fields


def prepare(ref: NoticeRef, *, borrowers: Borrowers, ledger: Ledger | None = None, clock=utc_now,
            waited_until: datetime | None = None, borrower_wait_s: int = BORROWER_WAIT_SECONDS,
            outboxes: dict[str, str] | None = None) -> dict[str, Any]:
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
                            "template_version": template_version(ref.status), "policy_version": POLICY_VERSION,
                            "confirm_within": policy.confirm_within_s, "superseded_by": None, "opted_out": False,
                            "borrower_missing": False, "wait_until": None,
                            # the instant this plan was made for: a Wait state's end counts as "now" (see above)
                            "decided_at": iso(now),
                            # the outbox queue: critical notices never wait behind a backlog of interim ones
                            "outbox": (outboxes or {}).get("critical" if policy.critical else "bulk")}
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


def _round(notice: dict[str, Any]) -> int:
    """Sends are counted in rounds: a reviewer's contact correction starts a new one (earlier sends do not count)."""
    return int(notice.get("resend_round", 0))


def _in_round(attempt: dict[str, Any], notice: dict[str, Any]) -> bool:
    """Sends of the current round only: a contact correction counts a new round (`resend_round`, written with the
    reviewer's action), so earlier sends are told apart by a counter, never by comparing two machines' clocks."""
    return int(attempt.get("round", 0)) == _round(notice)


def _settled_already(notice: dict[str, Any]) -> None:
    """A notice already delivered (a late receipt overtook the deadline) or stood down goes no further."""
    state = NoticeState(notice.get("state", NoticeState.STARTED.value))
    if state is NoticeState.SUPERSEDED:
        raise NoticeSuperseded(f"superseded by {notice.get('superseded_by')}")
    if state in FINAL_STATES:
        raise NoticeAlreadySettled(f"the notice is already {state.value}", reason=state.value.lower())


class Pace(Protocol):
    def reserve(self, provider: str, *, critical: bool = False) -> Any:
        """`.wait`: 0 to send now, else seconds; `.held`: a token is held for this process, due in `.wait`."""

    def due_in(self, provider: str) -> float | None: ...

    def on_time(self, provider: str, due: float) -> bool: ...

    def throttled(self, provider: str) -> None: ...

    def succeeded(self, provider: str) -> None: ...


def send(ref: NoticeRef, channel: Channel, *, ledger: Ledger, borrowers: Borrowers,
         senders: dict[Channel, list[Sender]], deliveries: Deliveries | None = None, pacer: Pace | None = None,
         plan: list[str] | None = None, decided_at: datetime | None = None, outage_budget: int | None = None,
         preferences_url: str | None = None, unsubscribe: Callable[[str, str], str] | None = None,
         sms_segments: int = DEFAULT_SMS_SEGMENT_BUDGET, observe: Callable[[str, str], Any] | None = None,
         pause: Callable[[float], bool] | None = None, clock=utc_now) -> dict[str, Any]:
    """Send the notice on one channel, through its providers in order, each try recorded before and after.

    Before anything goes out the notice is read: delivered meanwhile (a late receipt) or stood down, it ends here.
    Each provider call waits for the provider's pace (PaceWait: put the send back for that long) and is preceded
    by a "pending attempt" record: a retried send that finds one cannot know whether the provider took the
    message, so it records OUTCOME_UNKNOWN and hands the notice to a person instead of sending again. A provider
    that is down (5xx, unreachable) hands over to the next provider of the channel; a throttle is a wait
    (ProviderThrottled, no failover, nothing recorded but a count, the shared rate lowered); a permanent failure
    (the contact itself is bad) is raised at once.

    `observe(provider, outcome)` is told of every provider call: "sent", "throttled", "error" (down or
    unreachable), "refused" (the contact is bad) or "unknown" (the answer was lost).

    `pause(seconds)` lets the sender wait in place (True: it waited). With it, a send token due a little later is
    held while the notice is read and rendered, and the provider is called at the token's moment, not after the
    reads: a provider whose quota has no slack (one send a second) sees the sends as evenly spaced as the tokens.

    `preferences_url` is the borrower's preferences page (the email footer links to it with the notice id);
    `unsubscribe(borrower_id, notification_id)` gives a non-critical email's one-click `List-Unsubscribe` URL.

    Returns the message's ids and whether its provider can confirm delivery. The message is recorded under its
    provider message id, with any receipt that got there first. Idempotent: a send retried after its message
    went out returns that message again ("replayed").
    """
    policy = POLICIES[ref.status]
    providers = senders.get(channel, [])
    # The first provider's send token is taken before anything is read: a send that must wait costs one write.
    held = _reserve(pacer, providers[0].provider, policy.critical, pause) if providers else None
    notice, replay = _before_sending(ref, channel, ledger, clock)
    if replay is not None:
        if deliveries is not None:
            _recorded_for_receipts(ref, replay, deliveries, ledger)
        return replay
    if outage_budget is not None and outage_tries(notice, channel) >= outage_budget:
        # A second copy of this send (queues deliver at least once) after the channel spent its outage budget.
        raise TransientChannelError(f"every {channel.value} provider stayed down", reason="outage_budget_spent")
    borrower = borrowers.get(ref.borrower_id)
    now = max(clock(), decided_at) if decided_at else clock()  # the plan's instant counts, as in prepare
    closes = window_closes_at(ref.status, borrower, now)
    if closes is not None and now >= closes:
        # Collection hours are law: a send still queued when its window shut waits for the next one.
        ledger.note_window_missed(ref.notification_id, iso(closes))
        raise SendWindowClosed(f"the send window closed at {iso(closes)}")
    message = _render(notice, borrower, preferences_url=preferences_url, unsubscribe=unsubscribe,
                      sms_segments=sms_segments)
    address = destination(channel, borrower)
    pinned = {"plan": plan if plan is not None else [channel.value], "policy_version": POLICY_VERSION,
              "template_id": message.template_id, "template_version": message.template_version,
              "content_hash": message.content_hash}
    attempt_no = len(notice.get("attempts", []))
    last_error: TransientChannelError | None = None
    for sender in providers:
        reservation = held if held is not None and held[0] == sender.provider else \
            _reserve(pacer, sender.provider, policy.critical, pause)
        held = None
        due = _await_token(pacer, reservation, policy.critical, pause)
        attempt_no += 1
        attempt: dict[str, Any] = {
            "attempt": attempt_no, "round": _round(notice), "channel": channel.value, "provider": sender.provider,
            "started_at": iso(clock()), "template_id": message.template_id,
            "template_version": message.template_version, "content_hash": message.content_hash,
            **_sms_fields(message, channel)}
        try:
            ledger.begin_attempt(ref.notification_id, attempt)
        except AttemptRaced:
            # Another copy of this send moved since this one read the notice: nothing went out from here. Come
            # back and read again (the other copy's message is then replayed, never sent twice).
            pending = (ledger.get(ref.notification_id) or {}).get("pending_attempt") or {}
            in_flight = int(pending.get("attempt", 0)) == attempt_no
            raise PaceWait(IN_FLIGHT_RETRY_S if in_flight else RACED_RETRY_S, sender.provider) from None
        if due is not None and pacer is not None and not pacer.on_time(sender.provider, due):
            # Held up (a slow write, a busy host) past its token: sending now would crowd the next send. Nothing
            # went out; the send takes a new token.
            ledger.drop_pending(ref.notification_id, attempt_no)
            raise PaceWait(0.0, sender.provider)
        try:
            delivery = sender.send(address, _for_channel(message, channel))
        except ProviderThrottled:
            _observe(observe, sender.provider, "throttled")
            ledger.drop_pending(ref.notification_id, attempt_no, throttled=True)
            if pacer is not None:
                pacer.throttled(sender.provider)
            raise
        except (PermanentChannelError, SendOutcomeUnknown) as err:
            result = (AttemptResult.FAILED_PERMANENT if isinstance(err, PermanentChannelError)
                      else AttemptResult.OUTCOME_UNKNOWN)
            _observe(observe, sender.provider, "refused" if isinstance(err, PermanentChannelError) else "unknown")
            attempt.update(result=result.value, error=err.reason, finished_at=iso(clock()))
            ledger.append_attempt(ref.notification_id, attempt, pinned=pinned)
            raise
        except TransientChannelError as err:
            _observe(observe, sender.provider, "error")
            attempt.update(result=AttemptResult.FAILED_TRANSIENT.value, error=err.reason, finished_at=iso(clock()))
            ledger.append_attempt(ref.notification_id, attempt, pinned=pinned)
            last_error = err
            continue
        _observe(observe, sender.provider, "sent")
        if pacer is not None:
            pacer.succeeded(sender.provider)
        attempt.update(result=AttemptResult.SENT.value, message_id=delivery.message_id,
                       destination=delivery.destination, finished_at=iso(clock()),
                       delivery_status=DeliveryStatus.SENT.value, delivery_rank=DeliveryStatus.SENT.rank,
                       receipts={}, confirms=sender.confirms)
        unconfirmed = not sender.confirms and not policy.critical
        ledger.append_attempt(ref.notification_id, attempt, pinned=pinned,
                              state=NoticeState.SENT_UNCONFIRMED if unconfirmed else NoticeState.SENT)
        if deliveries is not None:
            item = deliveries.record_sent(
                delivery.message_id, notification_id=ref.notification_id, attempt=attempt_no,
                channel=channel.value, provider=delivery.provider, task_token=None, confirms=sender.confirms,
                borrower_id=ref.borrower_id,
                contact_ref=contact_ref(ref.borrower_id, address if channel is not Channel.INBOX else None))
            _apply_early_receipts(ref, attempt_no, item, ledger)
        return _result(attempt, replayed=False)
    if last_error is None:
        raise PermanentChannelError(f"no provider configured for {channel.value}", reason="channel_not_configured")
    raise TransientChannelError(f"every {channel.value} provider failed: {last_error}", reason=last_error.reason)


def _recorded_for_receipts(ref: NoticeRef, replay: dict[str, Any], deliveries: Deliveries, ledger: Ledger) -> None:
    """A replayed send whose first try stopped after the ledger recorded the message but before the message's own
    record was written: write that record now, or its receipts would have nothing to find (the execution could not
    wait for them, and a receipt that came meanwhile would never reach the ledger). The record is written once. The
    contact it went to is not known here (it may have changed since): its reference is one no contact has, so a
    bounce or an opt-out on this message marks no contact."""
    item = deliveries.get(replay["message_id"])
    if item and item.get("notification_id"):
        return
    item = deliveries.record_sent(
        replay["message_id"], notification_id=ref.notification_id, attempt=int(replay["attempt"]),
        channel=replay["channel"], provider=replay["provider"], task_token=None, confirms=bool(replay["confirms"]),
        borrower_id=ref.borrower_id, contact_ref=UNKNOWN_CONTACT)
    _apply_early_receipts(ref, int(replay["attempt"]), item, ledger)


def _observe(observe: Callable[[str, str], Any] | None, provider: str, outcome: str) -> None:
    if observe is not None:
        observe(provider, outcome)


def _before_sending(ref: NoticeRef, channel: Channel, ledger: Ledger, clock: Any
                    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Read the notice and settle what earlier tries left: the notice (re-read if needed) and, when this channel
    already sent in this round, the result to replay. Raises when nothing may be sent."""
    notice = _notice(ledger, ref.notification_id)
    _settled_already(notice)
    pending = notice.get("pending_attempt")
    if pending:  # an earlier try stopped between "about to send" and its record
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
            return notice, _result(attempt, replayed=True)
    if notice.get("attempts") and POLICIES[ref.status].supersedable:
        # Retrying or falling back: if the loan has moved on meanwhile, this notice stands down.
        newer = ledger.newer_notice(ref.loan_id, ref.version)
        if newer:
            ledger.mark_superseded(ref.notification_id, newer)
            raise NoticeSuperseded(f"superseded by {newer}")
    return notice, None


def _reserve(pacer: Pace | None, provider: str, critical: bool, pause: Callable[[float], bool] | None
             ) -> tuple[str, Any] | None:
    """A send token for this provider: now, or held for this process until its moment (when the sender can wait in
    place). Otherwise PaceWait (nothing attempted) with how long until the next one."""
    if pacer is None:
        return None
    reservation = pacer.reserve(provider, critical=critical)
    if reservation.wait > 0 and not (reservation.held and pause is not None):
        raise PaceWait(reservation.wait, provider)
    return provider, reservation


def _await_token(pacer: Pace | None, held: tuple[str, Any] | None, critical: bool,
                 pause: Callable[[float], bool] | None) -> float | None:
    """Right before the provider call: wait for the held token's moment, then use it. Returns its moment (None for
    a token taken for now, or no pacer: the send is on time by definition)."""
    if pacer is None or held is None or not held[1].held:
        return None
    provider = held[0]
    left = pacer.due_in(provider)
    if left is not None and left > 0 and (pause is None or not pause(left)):
        raise PaceWait(left, provider)
    reservation = pacer.reserve(provider, critical=critical)
    if reservation.wait > 0:
        raise PaceWait(reservation.wait, provider)
    return reservation.due


def outage_tries(notice: dict[str, Any], channel: Channel) -> int:
    """Tries of this channel that found every provider down, in the current round."""
    return sum(1 for a in notice.get("attempts", []) if a.get("channel") == channel.value and _in_round(a, notice)
               and a.get("result") == AttemptResult.FAILED_TRANSIENT.value)


def _result(attempt: dict[str, Any], *, replayed: bool) -> dict[str, Any]:
    return {"channel": attempt["channel"], "provider": attempt["provider"], "message_id": attempt["message_id"],
            "attempt": int(attempt["attempt"]), "confirms": bool(attempt.get("confirms", True)),
            "replayed": replayed}


def _apply_early_receipts(ref: NoticeRef, attempt_no: int, item: dict[str, Any], ledger: Ledger) -> None:
    """Receipts that reached us before the send's record (kept on the message): into the ledger now."""
    if not item.get("receipts"):
        return
    status = DeliveryStatus(item["status"])
    for kind, receipt in sorted(item["receipts"].items(), key=lambda kv: kv[1].get("at", "")):
        ledger.record_receipt(ref.notification_id, attempt_no, kind, {k: v for k, v in receipt.items() if k != "rid"},
                              status)


def await_receipt(message_id: str, task_token: str, *, deliveries: Deliveries, callbacks: Callbacks) -> str:
    """The execution now waits for this message's receipt on `task_token` (its deadline counts from here, just
    after the send). A receipt that already came answers it at once."""
    item = deliveries.arm(message_id, task_token)
    outcome = answer_waiting(item, deliveries=deliveries, callbacks=callbacks) if settled(item) else None
    return outcome.value if outcome else "waiting"


def deadline_passed(notification_id: str, attempt: int, *, deadline_s: int, ledger: Ledger, clock=utc_now) -> bool:
    """The execution stopped waiting for this attempt's receipt (its confirmation deadline passed): the attempt is
    recorded EXPIRED in the ledger now, before the next channel is tried. False if the attempt is not there."""
    return ledger.expire_attempt(notification_id, attempt, deadline_s=deadline_s, at=iso(clock()))


def undeliverable(notification_id: str, reason: str, *, ledger: Ledger) -> bool:
    """No channel delivered and no review case could be opened: the notice is UNDELIVERED (unless it settled)."""
    return ledger.mark_undelivered(notification_id, reason)
