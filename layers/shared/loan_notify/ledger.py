"""The Notifications ledger: one item per notice, every attempt on it, and its outcome.

It is the proof of what happened, so writes are conditional and append-only where it matters: a notice is created
once, an attempt is appended, never rewritten. Every write goes through `_write`, which describes it as a
`chain.Change` and appends its entry to the item's hash chain in the same conditional write (see loan_notify.chain):
`evidence verify` can then show the item was not edited afterwards.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from loan_notify.chain import GENESIS, Change, make_entry
from loan_notify.clock import iso, utc_now
from loan_notify.errors import AttemptRaced, NoticeNotFound, conditional_check_failed, put_if_absent
from loan_notify.policy import POLICIES
from loan_notify.vocabulary import FINAL_STATES, DeliveryStatus, LoanStatus, NoticeState

if TYPE_CHECKING:  # annotations only: importing pydantic's models costs a cold start ~0.1 s
    from loan_notify.models import LoanImage

__all__ = ["FINAL_STATES", "Ledger"]

BY_LOAN_INDEX = "ByLoan"
BY_BORROWER_INDEX = "ByBorrower"
# Sparse index: only critical notices not yet in a final state carry `undelivered_critical` (their loan status).
UNDELIVERED_CRITICAL_INDEX = "UndeliveredCritical"
CRITICAL_STATUSES = tuple(sorted(s.value for s in LoanStatus if POLICIES[s].critical))

# A notice in one of these states (vocabulary.FINAL_STATES) is settled: nothing moves it again (no case, no
# stand-down, no resend, no state written by a late attempt record).
_FINAL_VALUES = {f":final{n}": state.value for n, state in enumerate(sorted(FINAL_STATES))}
_FINAL_PLACEHOLDERS = ", ".join(_FINAL_VALUES)
_NOT_FINAL = f"attribute_exists(notification_id) AND NOT #state IN ({_FINAL_PLACEHOLDERS})"
_HEADS_KEPT = 512  # chain heads remembered per Ledger (saves a read before most writes); a stale one costs a retry


def _state(change: Change, state: NoticeState, reason: str | None) -> Change:
    """A state change always says why (or drops a reason that belonged to the state before), and a final state
    takes the notice out of the undelivered-critical index."""
    change.set("state", state.value)
    if reason is not None:
        change.set("reason", reason)
    else:
        change.remove("reason")
    if state in FINAL_STATES:
        change.remove("undelivered_critical")
    return change


def _grouped(condition: str) -> str:
    """`condition` as one operand of AND (DynamoDB refuses redundant parentheses, so add them only if needed)."""
    if condition.startswith("("):
        depth = 0
        for position, char in enumerate(condition):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                if position == len(condition) - 1:
                    return condition
                break
    return f"({condition})" if " OR " in condition.upper() else condition


def query_all(table: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item a DynamoDB Query matches, page after page."""
    items: list[dict[str, Any]] = []
    while True:
        page = table.query(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class Ledger:
    """Repository over the Notifications table (a boto3 Table resource is passed in)."""

    def __init__(self, table: Any, clock=utc_now) -> None:
        self._table = table
        self._clock = clock
        self._heads: OrderedDict[str, tuple[int, str]] = OrderedDict()

    # -- the one write path ------------------------------------------------------------------------------------

    def _remember(self, notification_id: str, item: dict[str, Any] | None) -> None:
        if item and "chain_seq" in item:
            self._heads[notification_id] = (int(item["chain_seq"]), str(item["chain_head"]))
            self._heads.move_to_end(notification_id)
            while len(self._heads) > _HEADS_KEPT:
                self._heads.popitem(last=False)

    def _head(self, notification_id: str, *, fresh: bool = False) -> tuple[int, str]:
        if not fresh and notification_id in self._heads:
            return self._heads[notification_id]
        item = self._table.get_item(Key={"notification_id": notification_id}, ConsistentRead=True,
                                    ProjectionExpression="chain_seq, chain_head").get("Item") or {}
        head = (int(item.get("chain_seq", 0)), str(item.get("chain_head", GENESIS)))
        self._remember(notification_id, {"chain_seq": head[0], "chain_head": head[1]})
        return head

    def _write(self, notification_id: str, change: Change, condition: str | None = None,
               names: dict[str, str] | None = None, values: dict[str, Any] | None = None,
               return_values: str | None = None) -> dict[str, Any]:
        """Apply `change` under `condition` and append its chain entry, in one write.

        The write is also conditional on the chain head it extends: when another writer extended the chain first,
        the head is read again and the write retried (the chain stays linear). When the caller's own condition
        fails, its ClientError is raised as before."""
        fresh = False
        while True:
            seq, head = self._head(notification_id, fresh=fresh)
            entry = make_entry(seq + 1, iso(self._clock()), change.record(), head)
            expression, change_names, change_values = change.expression(
                ["chain = list_append(if_not_exists(chain, :chain_empty), :chain_entry)",
                 "chain_head = :chain_hash", "chain_seq = :chain_next"])
            chain_values: dict[str, Any] = {":chain_empty": [], ":chain_entry": [entry], ":chain_hash": entry["hash"],
                                            ":chain_next": seq + 1}
            chain_condition = "attribute_not_exists(chain_seq)" if seq == 0 else "chain_seq = :chain_seq"
            if seq:
                chain_values[":chain_seq"] = seq
            all_names = {**change_names, **(names or {})}
            kwargs: dict[str, Any] = {
                "Key": {"notification_id": notification_id}, "UpdateExpression": expression,
                "ConditionExpression": f"{chain_condition} AND {_grouped(condition)}" if condition else chain_condition,
                "ExpressionAttributeValues": {**change_values, **(values or {}), **chain_values}}
            if all_names:
                kwargs["ExpressionAttributeNames"] = all_names
            if return_values:
                kwargs["ReturnValues"] = return_values
            try:
                response = self._table.update_item(**kwargs)
            except ClientError as err:
                if not conditional_check_failed(err):
                    raise
                if self._head(notification_id, fresh=True)[0] == seq:
                    raise  # the chain was where we thought: the caller's condition failed
                fresh = True
                continue
            self._remember(notification_id, {"chain_seq": seq + 1, "chain_head": entry["hash"]})
            return response.get("Attributes", {})

    def _put_first(self, item: dict[str, Any], what: str) -> bool:
        """Create the item with the first entry of its chain; False if it exists already."""
        entry = make_entry(1, item["created_at"], {"what": what, "item": dict(item)}, GENESIS)
        if not put_if_absent(self._table, {**item, "chain": [entry], "chain_head": entry["hash"], "chain_seq": 1},
                             "notification_id"):
            return False
        self._remember(item["notification_id"], {"chain_seq": 1, "chain_head": entry["hash"]})
        return True

    def _forward(self, notification_id: str, change: Change, condition: str | None = None,
                 values: dict[str, Any] | None = None) -> bool:
        """One update that only moves a notice forward: it applies unless the notice is already final."""
        try:
            self._write(notification_id, change, _NOT_FINAL + (f" AND {condition}" if condition else ""),
                        {"#state": "state"}, {**_FINAL_VALUES, **(values or {})})
            return True
        except ClientError as err:
            if conditional_check_failed(err):
                return False
            raise

    # -- notices -----------------------------------------------------------------------------------------------

    def open_notice(self, loan: LoanImage, execution_name: str) -> bool:
        """Create the notice; False if it already exists (a duplicate delivery of the same change)."""
        now = iso(self._clock())
        item: dict[str, Any] = {
            "notification_id": loan.notification_id,
            "loan_id": loan.loan_id,
            "borrower_id": loan.borrower_id,
            "status": loan.status.value,
            "version": loan.version,
            "status_updated_at": iso(loan.updated_at),
            "state": NoticeState.STARTED.value,
            "execution_name": execution_name,
            "attempts": [],
            "created_at": now,
            "updated_at": now,
        }
        if loan.status.value in CRITICAL_STATUSES:
            item["undelivered_critical"] = loan.status.value
        for key in ("amount", "currency", "status_reason"):
            if getattr(loan, key) is not None:
                item[key] = getattr(loan, key)
        if self._put_first(item, "opened"):
            return True
        self._write(loan.notification_id, Change("duplicate_delivery").add("duplicate_deliveries", 1)
                    .set("updated_at", now), "attribute_exists(notification_id)")
        return False

    def reject(self, notification_id: str, reason: str, detail: str, context: dict[str, Any]) -> None:
        """Record a status change that cannot become a notice, with its reason. Idempotent."""
        now = iso(self._clock())
        item = {k: v for k, v in context.items() if v is not None}
        item.update(notification_id=notification_id, state=NoticeState.REJECTED.value, reason=reason,
                    detail=detail[:1000], created_at=now, updated_at=now)
        self._put_first(item, "rejected")

    def get(self, notification_id: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"notification_id": notification_id}, ConsistentRead=True).get("Item")
        self._remember(notification_id, item)
        return item

    def owner(self, notification_id: str) -> dict[str, Any] | None:
        """Whose notice it is and its state (a projection): what an access check needs, read alike for a notice
        that exists and one that does not (the whole item is read only once the caller may see it)."""
        return self._table.get_item(Key={"notification_id": notification_id}, ConsistentRead=True,
                                    ProjectionExpression="borrower_id, #state",
                                    ExpressionAttributeNames={"#state": "state"}).get("Item")

    def _attempt_and_head(self, notification_id: str, index: int) -> dict[str, Any] | None:
        """The notice's attempt at `index` (under "attempts", as a one-element list: DynamoDB projects a list element
        so; no "attempts" when there is no such attempt) and its chain head: all a receipt reads, without the chain
        and the other attempts (most of the item)."""
        item = self._table.get_item(Key={"notification_id": notification_id}, ConsistentRead=True,
                                    ProjectionExpression=f"chain_seq, chain_head, attempts[{index}]").get("Item")
        self._remember(notification_id, item)
        return item

    def case_id(self, notification_id: str) -> str | None:
        """The review case opened for the notice, if any (one attribute read)."""
        item = self._table.get_item(Key={"notification_id": notification_id}, ConsistentRead=True,
                                    ProjectionExpression="case_id").get("Item") or {}
        return item.get("case_id")

    def begin_attempt(self, notification_id: str, pending: dict[str, Any]) -> None:
        """Record "about to call the provider" before the call: a retry that finds it knows the outcome is unknown
        (the provider may have accepted the message) and never sends blindly again.

        Only on the notice as the sender read it: no attempt pending, and exactly the attempts before this one
        (`pending["attempt"] - 1`). A second copy of the same send that read the notice before the first copy
        recorded its message would otherwise begin, and send, the same attempt again. AttemptRaced when either
        does not hold (nothing is written: read the notice again)."""
        before = int(pending["attempt"]) - 1
        attempts_as_read = "size(attempts) = :before" if before else \
            "(attribute_not_exists(attempts) OR size(attempts) = :before)"
        try:
            self._write(notification_id, Change("attempt_begun").set("pending_attempt", pending)
                        .set("updated_at", iso(self._clock())),
                        f"attribute_exists(notification_id) AND attribute_not_exists(pending_attempt) "
                        f"AND {attempts_as_read}", values={":before": before})
        except ClientError as err:
            if not conditional_check_failed(err):
                raise
            raise AttemptRaced(f"attempt {pending['attempt']} of {notification_id}: the notice changed since it "
                               f"was read") from err

    def drop_pending(self, notification_id: str, attempt_no: int, *, throttled: bool = False) -> None:
        """The provider refused before accepting anything (a throttle): no attempt happened, nothing to record
        but the count."""
        change = Change("throttled" if throttled else "attempt_dropped").remove("pending_attempt") \
            .set("updated_at", iso(self._clock()))
        if throttled:
            change.add("throttled", 1)
        try:
            self._write(notification_id, change, "pending_attempt.attempt = :n", values={":n": attempt_no})
        except ClientError as err:
            if not conditional_check_failed(err):
                raise

    def append_attempt(self, notification_id: str, attempt: dict[str, Any], *, state: NoticeState | None = None,
                       reason: str | None = None, pinned: dict[str, Any] | None = None) -> None:
        """Append one finished attempt begun with `begin_attempt`, and clear its pending record. `pinned` (plan,
        policy and template version, content hash) is set with it: the same values on every attempt of a notice.

        The notice's state only moves forward: a final state (DELIVERED by a receipt that overtook this write, say)
        is never overwritten; the attempt is still appended, because it happened. Appending is once only: a
        retried write whose first try landed finds its pending record gone and the attempt already there.
        """
        attempt = {"receipts": {}, **attempt}  # receipts are kept on the attempt, once per kind
        for with_state in ([True, False] if state is not None else [False]):
            change = Change("attempt").append("attempts", [attempt]).set("updated_at", iso(self._clock()))
            for key, value in sorted((pinned or {}).items()):
                change.set(key, value)
            condition, values = "pending_attempt.attempt = :n", {":n": attempt["attempt"]}
            names: dict[str, str] = {}
            if with_state:
                assert state is not None
                _state(change, state, reason)
                condition += f" AND NOT #state IN ({_FINAL_PLACEHOLDERS})"
                names["#state"] = "state"
                values.update(_FINAL_VALUES)
            elif reason is not None:
                change.set("reason", reason)
            change.remove("pending_attempt")
            try:
                self._write(notification_id, change, condition, names or None, values)
                return
            except ClientError as err:
                if not conditional_check_failed(err):
                    raise
            item = self.get(notification_id) or {}
            attempts = item.get("attempts", [])
            if any(int(a.get("attempt", 0)) == int(attempt["attempt"]) for a in attempts):
                return  # a retry of a write that landed
            if not item:
                raise NoticeNotFound(f"notice {notification_id} is not in the ledger")
            pending = item.get("pending_attempt")
            if not pending or int(pending.get("attempt", 0)) != int(attempt["attempt"]):
                raise RuntimeError(f"attempt {attempt['attempt']} of {notification_id} was never begun")

    def record_receipt(self, notification_id: str, attempt: int, key: str, receipt: dict[str, Any],
                       status: DeliveryStatus) -> None:
        """Store a receipt on its attempt (the first of each kind: bounded, and idempotent on redelivery) and move
        the attempt's delivery status forward only. A confirming status also makes the notice DELIVERED unless it
        is already in a final state. One read and one write in the usual case; none written for a receipt that is
        no news."""
        index = attempt - 1  # attempts are appended in order, numbered from 1
        path = f"attempts[{index}]"
        recorded = ((self._attempt_and_head(notification_id, index) or {}).get("attempts") or [])[:1]
        if recorded and key in (recorded[0].get("receipts") or {}) and \
                int(recorded[0].get("delivery_rank", -1)) >= status.rank:
            # This kind of receipt is kept already and the status is no news (opens and clicks repeat): nothing is
            # written, so the item and its chain stay bounded however many come.
            if status.confirms:
                self.mark_delivered(notification_id, receipt["at"], reason=f"confirmed_{status.value.lower()}")
            return
        rank_ok = f"(attribute_not_exists({path}.delivery_rank) OR {path}.delivery_rank < :rank)"
        now = iso(self._clock())

        def change(forward: bool, delivered: bool) -> Change:
            c = Change(f"receipt_{status.value.lower()}").set_if_absent(("attempts", index, "receipts", key), receipt)
            c.set("updated_at", now)
            if forward:
                c.set(("attempts", index, "delivery_status"), status.value)
                c.set(("attempts", index, "delivery_rank"), status.rank)
            if delivered:
                _state(c, NoticeState.DELIVERED, f"confirmed_{status.value.lower()}")
                c.set_if_absent("delivered_at", receipt["at"])
            return c

        options: list[tuple[Change, str, dict[str, Any], bool]] = []
        if status.confirms:  # the usual case: the receipt, the attempt's status and the notice, in one write
            options.append((change(True, True), f"{rank_ok} AND NOT #state IN ({_FINAL_PLACEHOLDERS})",
                            {":rank": status.rank, **_FINAL_VALUES}, True))
        options.append((change(True, False), rank_ok, {":rank": status.rank}, False))
        options.append((change(False, False), f"attribute_exists({path})", {}, False))
        for number, (update, condition, values, with_state) in enumerate(options):
            try:
                self._write(notification_id, update, condition, {"#state": "state"} if with_state else None,
                            values or None)
                if with_state:
                    return
                break
            except ClientError as err:
                if not conditional_check_failed(err):
                    raise
                if number == len(options) - 1:
                    raise NoticeNotFound(f"attempt {attempt} of {notification_id} is not in the ledger") from err
        if status.confirms:  # the attempt was already at or past this status, or the notice was final
            self.mark_delivered(notification_id, receipt["at"], reason=f"confirmed_{status.value.lower()}")

    def expire_attempt(self, notification_id: str, attempt: int, *, deadline_s: int, at: str) -> bool:
        """The confirmation deadline of a sent attempt passed with no confirming receipt: recorded on the attempt
        (`expired_at`, once), so the ledger never shows it as merely SENT. A receipt that comes later is still
        recorded beside it. False when the attempt is not in the ledger."""
        index = attempt - 1
        change = (Change("deadline_passed").set_if_absent(("attempts", index, "expired_at"), at)
                  .set_if_absent(("attempts", index, "deadline_s"), deadline_s).set("updated_at", iso(self._clock())))
        try:
            self._write(notification_id, change, f"attribute_exists(attempts[{index}]) AND "
                                                 f"attempts[{index}].attempt = :n", values={":n": attempt})
            return True
        except ClientError as err:
            if not conditional_check_failed(err):
                raise
            return False

    def mark_undelivered(self, notification_id: str, reason: str) -> bool:
        """No review case could be opened for a notice no channel delivered: UNDELIVERED (forward only)."""
        return self._forward(notification_id, _state(Change("undelivered"), NoticeState.UNDELIVERED, reason)
                             .set("updated_at", iso(self._clock())))

    def note_window_missed(self, notification_id: str, closed_at: str) -> None:
        """A queued send found its legal window shut: recorded, and the notice waits for the next window."""
        self._write(notification_id, Change("window_missed").set("window_missed_at", closed_at)
                    .set("updated_at", iso(self._clock())).add("windows_missed", 1),
                    "attribute_exists(notification_id)")

    def mark_delivered(self, notification_id: str, at: str, reason: str = "confirmed") -> bool:
        """The borrower has the notice: DELIVERED from any state that is not final. False if already final."""
        return self._forward(notification_id, _state(Change("delivered"), NoticeState.DELIVERED, reason)
                             .set_if_absent("delivered_at", at).set("updated_at", iso(self._clock())))

    def set_state(self, notification_id: str, state: NoticeState, reason: str | None = None) -> bool:
        """Move a notice that is not final to `state`; False (nothing written) if it is already final."""
        return self._forward(notification_id, _state(Change(f"state_{state.value.lower()}"), state, reason)
                             .set("updated_at", iso(self._clock())))

    def newer_notice(self, loan_id: str, version: int) -> str | None:
        """The id of a notice for a later change of the same loan, if the platform has written one."""
        for item in self.by_loan(loan_id):
            if int(item.get("version", -1)) > version and item.get("state") != NoticeState.REJECTED.value:
                return item["notification_id"]
        return None

    def mark_superseded(self, notification_id: str, by: str) -> bool:
        return self.stand_down(notification_id, NoticeState.SUPERSEDED, "superseded", superseded_by=by)

    def stand_down(self, notification_id: str, state: NoticeState, reason: str, **fields: Any) -> bool:
        """The notice will not be sent, on purpose (superseded, opted out): recorded as such.

        From any state that is not final (STARTED, SENT, NEEDS_REVIEW, ...); False, and nothing written, when the
        notice already reached a final state (it is never overwritten)."""
        change = _state(Change(f"stood_down_{state.value.lower()}"), state, reason).set("updated_at",
                                                                                        iso(self._clock()))
        for key, value in sorted(fields.items()):
            change.set(key, value)
        return self._forward(notification_id, change)

    def count_review(self, notification_id: str, wait_key: str | None = None) -> int:
        """Number the review case of this notice (1, 2, ...) for one wait of its execution.

        `wait_key` names the wait (the execution and the instant it entered the review step): a retried step
        with the same key gets the same number, so it finds the case it already opened instead of a second one."""
        if wait_key is None:
            item = self._write(notification_id, Change("review_counted").add("review_cases", 1),
                               "attribute_exists(notification_id)", return_values="UPDATED_NEW")
            return int(item["review_cases"])
        try:
            item = self._write(notification_id, Change("review_counted").set("review_wait", wait_key)
                               .add("review_cases", 1),
                               "attribute_exists(notification_id) AND "
                               "(attribute_not_exists(review_wait) OR review_wait <> :key)",
                               values={":key": wait_key}, return_values="UPDATED_NEW")
            return int(item["review_cases"])
        except ClientError as err:
            if not conditional_check_failed(err):
                raise
        current = self.get(notification_id)
        if current is None or current.get("review_wait") != wait_key:
            raise RuntimeError(f"notice {notification_id} has no review wait {wait_key}")
        return int(current["review_cases"])

    def mark_needs_review(self, notification_id: str, case_id: str, reason: str) -> bool:
        """NEEDS_REVIEW, forward only: False when the notice reached a final state meanwhile (a late receipt)."""
        return self._forward(notification_id, _state(Change("needs_review"), NoticeState.NEEDS_REVIEW, reason)
                             .set("case_id", case_id).set("updated_at", iso(self._clock())))

    def settle_delivered(self, notification_id: str, at: str) -> bool:
        """DELIVERED after a confirming receipt that arrived while a case was open (forward only)."""
        return self._forward(notification_id, _state(Change("delivered"), NoticeState.DELIVERED, "confirmed_late")
                             .set_if_absent("delivered_at", at).set("updated_at", iso(self._clock())))

    def record_human_action(self, notification_id: str, action: dict[str, Any], state: NoticeState | None
                            ) -> int | None:
        """A reviewer's decision, with their note: kept here and in the case, never in the execution.

        Once per case (`action["case_id"]`): a retried resolve finds its action recorded and writes nothing again.
        `contact_corrected` starts a new resend round: `resend_round` is counted in the same write and the action
        carries it as `round`, so the sender tells this round's sends from earlier ones without comparing clocks.
        Returns that round (None for other decisions). `state` moves the notice forward only: a final state stays.
        """
        case_id = action["case_id"]
        corrects = action.get("decision") == "contact_corrected"
        while True:
            current = self.get(notification_id)
            if current is None:
                raise KeyError(f"notice {notification_id} is not in the ledger")
            if case_id in current.get("resolved_cases", set()):
                recorded = next((a for a in current.get("human_actions", []) if a.get("case_id") == case_id), {})
                rnd = recorded.get("round")
                break
            rnd = int(current.get("resend_round", 0)) + 1 if corrects else None
            change = Change(f"human_{action.get('decision')}").append(
                "human_actions", [{**action, "round": rnd} if corrects else action]).set("updated_at",
                                                                                        iso(self._clock()))
            values: dict[str, Any] = {":c": case_id}
            condition = "attribute_exists(notification_id) AND NOT contains(resolved_cases, :c)"
            if corrects:
                change.set("resend_round", rnd)
                if current.get("state") not in {s.value for s in FINAL_STATES}:
                    change.set("reason", "contact_corrected")  # resending: no longer "no channel delivered"
                if "resend_round" in current:
                    condition += " AND resend_round = :previous"
                    values[":previous"] = current["resend_round"]
                else:
                    condition += " AND attribute_not_exists(resend_round)"
            change.add("resolved_cases", {case_id})
            try:
                self._write(notification_id, change, condition, values=values)
                break
            except ClientError as err:
                if not conditional_check_failed(err):
                    raise  # a lost race (another round, the same case recorded meanwhile): read again
        if state is not None:
            self._forward(notification_id, _state(Change("decided"), state, f"human_{action.get('decision')}")
                          .set("updated_at", iso(self._clock())))
        return int(rnd) if rnd is not None else None

    def by_borrower(self, borrower_id: str, *, limit: int, start: dict[str, Any] | None = None
                    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of a borrower's notices, newest first, and the key to continue from."""
        kwargs: dict[str, Any] = {"IndexName": BY_BORROWER_INDEX, "ScanIndexForward": False, "Limit": limit,
                                  "KeyConditionExpression": Key("borrower_id").eq(borrower_id)}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = self._table.query(**kwargs)
        return page.get("Items", []), page.get("LastEvaluatedKey")

    def mark_read(self, notification_id: str, at: str) -> None:
        self._write(notification_id, Change("read").set_if_absent("read_at", at), "attribute_exists(notification_id)")

    def by_loan(self, loan_id: str) -> list[dict[str, Any]]:
        items = query_all(self._table, IndexName=BY_LOAN_INDEX, KeyConditionExpression=Key("loan_id").eq(loan_id))
        return sorted(items, key=lambda i: (i.get("version", 0), i.get("created_at", "")))

    def borrower_missing(self, notification_id: str, now: datetime) -> datetime:
        """Record when the notice first found no borrower row (`borrower_missing_since`, written once) and
        return that instant: the bound on how long the notice waits for the row."""
        attributes = self._write(
            notification_id, Change("borrower_missing").set_if_absent("borrower_missing_since", iso(now))
            .set("updated_at", iso(self._clock())), "attribute_exists(notification_id)",
            return_values="ALL_NEW")  # UPDATED_NEW may leave out a value if_not_exists kept
        return datetime.fromisoformat(attributes["borrower_missing_since"].replace("Z", "+00:00"))

    def oldest_undelivered_critical(self) -> dict[str, Any] | None:
        """The oldest critical notice not yet in a final state (sparse index, one key per critical status)."""
        oldest: dict[str, Any] | None = None
        for status in CRITICAL_STATUSES:
            items = self._table.query(IndexName=UNDELIVERED_CRITICAL_INDEX, Limit=1, ScanIndexForward=True,
                                      KeyConditionExpression=Key("undelivered_critical").eq(status)).get("Items", [])
            if items and (oldest is None or items[0]["created_at"] < oldest["created_at"]):
                oldest = items[0]
        return oldest
