"""The Notifications ledger: one item per notice, every attempt on it, and its outcome.

It is the proof of what happened, so writes are conditional and append-only where it matters:
a notice is created once, an attempt is appended, never rewritten.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from loan_notify.clock import iso, utc_now
from loan_notify.errors import NoticeNotFound, conditional_check_failed
from loan_notify.models import LoanImage
from loan_notify.vocabulary import FINAL_STATES, DeliveryStatus, NoticeState

__all__ = ["FINAL_STATES", "Ledger"]

BY_LOAN_INDEX = "ByLoan"
BY_BORROWER_INDEX = "ByBorrower"

# A notice in one of these states (vocabulary.FINAL_STATES) is settled: nothing moves it again (no case, no
# stand-down, no resend, no state written by a late attempt record).
_FINAL_VALUES = {f":final{n}": state.value for n, state in enumerate(sorted(FINAL_STATES))}
_FINAL_PLACEHOLDERS = ", ".join(_FINAL_VALUES)


class Ledger:
    """Repository over the Notifications table (a boto3 Table resource is passed in)."""

    def __init__(self, table: Any, clock=utc_now) -> None:
        self._table = table
        self._clock = clock

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
        for key in ("amount", "currency", "status_reason"):
            if getattr(loan, key) is not None:
                item[key] = getattr(loan, key)
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(notification_id)")
            return True
        except ClientError as err:
            if not conditional_check_failed(err):
                raise
        self._table.update_item(
            Key={"notification_id": loan.notification_id},
            UpdateExpression="ADD duplicate_deliveries :one SET updated_at = :now",
            ExpressionAttributeValues={":one": 1, ":now": now},
        )
        return False

    def reject(self, notification_id: str, reason: str, detail: str, context: dict[str, Any]) -> None:
        """Record a status change that cannot become a notice, with its reason. Idempotent."""
        now = iso(self._clock())
        item = {k: v for k, v in context.items() if v is not None}
        item.update(notification_id=notification_id, state=NoticeState.REJECTED.value, reason=reason,
                    detail=detail[:1000], created_at=now, updated_at=now)
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(notification_id)")
        except ClientError as err:
            if not conditional_check_failed(err):
                raise

    def get(self, notification_id: str) -> dict[str, Any] | None:
        return self._table.get_item(Key={"notification_id": notification_id}, ConsistentRead=True).get("Item")

    def begin_attempt(self, notification_id: str, pending: dict[str, Any]) -> None:
        """Record "about to call the provider" before the call: a retry that finds it knows the outcome is unknown
        (the provider may have accepted the message) and never sends blindly again."""
        self._table.update_item(
            Key={"notification_id": notification_id},
            UpdateExpression="SET pending_attempt = :p, updated_at = :now",
            ConditionExpression="attribute_exists(notification_id) AND attribute_not_exists(pending_attempt)",
            ExpressionAttributeValues={":p": pending, ":now": iso(self._clock())})

    def drop_pending(self, notification_id: str, attempt_no: int, *, throttled: bool = False) -> None:
        """The provider refused before accepting anything (a throttle): no attempt happened, nothing to record
        but the count."""
        try:
            self._table.update_item(
                Key={"notification_id": notification_id},
                UpdateExpression="REMOVE pending_attempt SET updated_at = :now" + (" ADD throttled :one"
                                                                                   if throttled else ""),
                ConditionExpression="pending_attempt.attempt = :n",
                ExpressionAttributeValues={":n": attempt_no, ":now": iso(self._clock()),
                                           **({":one": 1} if throttled else {})})
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
        names: dict[str, str] = {}
        values: dict[str, Any] = {":attempt": [attempt], ":now": iso(self._clock()), ":n": attempt["attempt"]}
        expression = "SET attempts = list_append(attempts, :attempt), updated_at = :now"
        for n, (key, value) in enumerate(sorted((pinned or {}).items())):
            names[f"#p{n}"] = key
            values[f":p{n}"] = value
            expression += f", #p{n} = :p{n}"
        if reason is not None:
            expression += ", reason = :reason"
            values[":reason"] = reason
        for with_state in ([True, False] if state is not None else [False]):
            update, condition = expression, "pending_attempt.attempt = :n"
            extra_names, extra_values = dict(names), dict(values)
            if with_state:
                assert state is not None
                update += ", #state = :state"
                condition += f" AND NOT #state IN ({_FINAL_PLACEHOLDERS})"
                extra_names["#state"] = "state"
                extra_values.update({":state": state.value, **_FINAL_VALUES})
            try:
                self._table.update_item(
                    Key={"notification_id": notification_id}, UpdateExpression=update + " REMOVE pending_attempt",
                    ConditionExpression=condition, ExpressionAttributeValues=extra_values,
                    **({"ExpressionAttributeNames": extra_names} if extra_names else {}))
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
        is already in a final state. One write in the usual case."""
        path = f"attempts[{attempt - 1}]"  # attempts are appended in order, numbered from 1
        stored = f"SET {path}.receipts.#k = if_not_exists({path}.receipts.#k, :r), updated_at = :now"
        base_values: dict[str, Any] = {":r": receipt, ":now": iso(self._clock())}
        forward = f", {path}.delivery_status = :status, {path}.delivery_rank = :rank"
        forward_values = {":status": status.value, ":rank": status.rank}
        rank_ok = f"(attribute_not_exists({path}.delivery_rank) OR {path}.delivery_rank < :rank)"
        not_final = f"NOT #state IN ({_FINAL_PLACEHOLDERS})"
        delivered_values = {":delivered": NoticeState.DELIVERED.value, ":at": receipt["at"], **_FINAL_VALUES}
        options: list[tuple[str, str, dict[str, Any], bool]] = []
        if status.confirms:  # the usual case: the receipt, the attempt's status and the notice, in one write
            options.append((stored + forward + ", #state = :delivered, delivered_at = if_not_exists(delivered_at, :at)",
                            f"{rank_ok} AND {not_final}", {**forward_values, **delivered_values}, True))
        options.append((stored + forward, rank_ok, forward_values, False))
        options.append((stored, f"attribute_exists({path})", {}, False))
        for number, (update, condition, values, with_state) in enumerate(options):
            try:
                self._table.update_item(
                    Key={"notification_id": notification_id}, UpdateExpression=update, ConditionExpression=condition,
                    ExpressionAttributeNames={"#k": key, **({"#state": "state"} if with_state else {})},
                    ExpressionAttributeValues={**base_values, **values})
                if with_state:
                    return
                break
            except ClientError as err:
                if not conditional_check_failed(err):
                    raise
                if number == len(options) - 1:
                    raise NoticeNotFound(f"attempt {attempt} of {notification_id} is not in the ledger") from err
        if status.confirms:  # the attempt was already at or past this status, or the notice was final
            self.mark_delivered(notification_id, receipt["at"])

    def note_window_missed(self, notification_id: str, closed_at: str) -> None:
        """A queued send found its legal window shut: recorded, and the notice waits for the next window."""
        self._table.update_item(
            Key={"notification_id": notification_id},
            UpdateExpression="SET window_missed_at = :at, updated_at = :now ADD windows_missed :one",
            ConditionExpression="attribute_exists(notification_id)",
            ExpressionAttributeValues={":at": closed_at, ":now": iso(self._clock()), ":one": 1})

    def mark_delivered(self, notification_id: str, at: str) -> bool:
        """The borrower has the notice: DELIVERED from any state that is not final. False if already final."""
        try:
            self._table.update_item(
                Key={"notification_id": notification_id},
                UpdateExpression="SET #state = :delivered, delivered_at = if_not_exists(delivered_at, :at), "
                                 "updated_at = :now",
                ConditionExpression=f"attribute_exists(notification_id) AND NOT #state IN ({_FINAL_PLACEHOLDERS})",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":delivered": NoticeState.DELIVERED.value, ":at": at,
                                           ":now": iso(self._clock()), **_FINAL_VALUES})
            return True
        except ClientError as err:
            if not conditional_check_failed(err):
                raise
            return False

    def set_state(self, notification_id: str, state: NoticeState, reason: str | None = None) -> bool:
        """Move a notice that is not final to `state`; False (nothing written) if it is already final."""
        values: dict[str, Any] = {":state": state.value, ":now": iso(self._clock()), **_FINAL_VALUES}
        expression = "SET #state = :state, updated_at = :now"
        if reason is not None:
            expression += ", reason = :reason"
            values[":reason"] = reason
        try:
            self._table.update_item(
                Key={"notification_id": notification_id}, UpdateExpression=expression,
                ConditionExpression=f"attribute_exists(notification_id) AND NOT #state IN ({_FINAL_PLACEHOLDERS})",
                ExpressionAttributeNames={"#state": "state"}, ExpressionAttributeValues=values)
            return True
        except ClientError as err:
            if not conditional_check_failed(err):
                raise
            return False

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
        names = {"#state": "state"}
        values: dict[str, Any] = {":state": state.value, ":reason": reason, ":now": iso(self._clock()),
                                  **_FINAL_VALUES}
        expression = "SET #state = :state, reason = :reason, updated_at = :now"
        for n, (key, value) in enumerate(sorted(fields.items())):
            names[f"#f{n}"] = key
            values[f":f{n}"] = value
            expression += f", #f{n} = :f{n}"
        return self._forward(notification_id, expression, names, values)

    def _forward(self, notification_id: str, expression: str, names: dict[str, str], values: dict[str, Any]
                 ) -> bool:
        """One update that only moves a notice forward: it applies unless the notice is already final."""
        try:
            self._table.update_item(
                Key={"notification_id": notification_id}, UpdateExpression=expression,
                ConditionExpression=f"attribute_exists(notification_id) AND NOT #state IN ({_FINAL_PLACEHOLDERS})",
                ExpressionAttributeNames=names, ExpressionAttributeValues=values)
            return True
        except ClientError as err:
            if conditional_check_failed(err):
                return False
            raise

    def count_review(self, notification_id: str, wait_key: str | None = None) -> int:
        """Number the review case of this notice (1, 2, ...) for one wait of its execution.

        `wait_key` names the wait (the execution and the instant it entered the review step): a retried step
        with the same key gets the same number, so it finds the case it already opened instead of a second one."""
        if wait_key is None:
            item = self._table.update_item(
                Key={"notification_id": notification_id}, UpdateExpression="ADD review_cases :one",
                ConditionExpression="attribute_exists(notification_id)", ExpressionAttributeValues={":one": 1},
                ReturnValues="UPDATED_NEW")["Attributes"]
            return int(item["review_cases"])
        try:
            item = self._table.update_item(
                Key={"notification_id": notification_id},
                UpdateExpression="SET review_wait = :key ADD review_cases :one",
                ConditionExpression="attribute_exists(notification_id) AND "
                                    "(attribute_not_exists(review_wait) OR review_wait <> :key)",
                ExpressionAttributeValues={":one": 1, ":key": wait_key}, ReturnValues="UPDATED_NEW")["Attributes"]
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
        return self._forward(
            notification_id, "SET #state = :state, case_id = :case, reason = :reason, updated_at = :now",
            {"#state": "state"}, {":state": NoticeState.NEEDS_REVIEW.value, ":case": case_id, ":reason": reason,
                                  ":now": iso(self._clock()), **_FINAL_VALUES})

    def settle_delivered(self, notification_id: str, at: str) -> bool:
        """DELIVERED after a confirming receipt that arrived while a case was open (forward only)."""
        return self._forward(
            notification_id, "SET #state = :state, delivered_at = if_not_exists(delivered_at, :at), updated_at = :now",
            {"#state": "state"}, {":state": NoticeState.DELIVERED.value, ":at": at, ":now": iso(self._clock()),
                                  **_FINAL_VALUES})

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
            values: dict[str, Any] = {":a": [{**action, "round": rnd} if corrects else action], ":empty": [],
                                      ":now": iso(self._clock()), ":case": {case_id}, ":c": case_id}
            expression = ("SET human_actions = list_append(if_not_exists(human_actions, :empty), :a), "
                          "updated_at = :now")
            condition = "attribute_exists(notification_id) AND NOT contains(resolved_cases, :c)"
            if corrects:
                expression += ", resend_round = :round"
                values[":round"] = rnd
                if "resend_round" in current:
                    condition += " AND resend_round = :previous"
                    values[":previous"] = current["resend_round"]
                else:
                    condition += " AND attribute_not_exists(resend_round)"
            try:
                self._table.update_item(Key={"notification_id": notification_id},
                                        UpdateExpression=expression + " ADD resolved_cases :case",
                                        ConditionExpression=condition, ExpressionAttributeValues=values)
                break
            except ClientError as err:
                if not conditional_check_failed(err):
                    raise  # a lost race (another round, the same case recorded meanwhile): read again
        if state is not None:
            self._forward(notification_id, "SET #state = :state, updated_at = :now", {"#state": "state"},
                          {":state": state.value, ":now": iso(self._clock()), **_FINAL_VALUES})
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
        self._table.update_item(Key={"notification_id": notification_id},
                                UpdateExpression="SET read_at = if_not_exists(read_at, :at)",
                                ExpressionAttributeValues={":at": at})

    def by_loan(self, loan_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"IndexName": BY_LOAN_INDEX, "KeyConditionExpression": Key("loan_id").eq(loan_id)}
        while True:
            page = self._table.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(items, key=lambda i: (i.get("version", 0), i.get("created_at", "")))
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def borrower_missing(self, notification_id: str, now: datetime) -> datetime:
        """Record when the notice first found no borrower row (`borrower_missing_since`, written once) and
        return that instant: the bound on how long the notice waits for the row."""
        attributes = self._table.update_item(
            Key={"notification_id": notification_id},
            UpdateExpression="SET borrower_missing_since = if_not_exists(borrower_missing_since, :now), "
                             "updated_at = :updated",
            ConditionExpression="attribute_exists(notification_id)",
            ExpressionAttributeValues={":now": iso(now), ":updated": iso(self._clock())},
            ReturnValues="ALL_NEW")["Attributes"]  # UPDATED_NEW may leave out a value if_not_exists kept
        return datetime.fromisoformat(attributes["borrower_missing_since"].replace("Z", "+00:00"))
