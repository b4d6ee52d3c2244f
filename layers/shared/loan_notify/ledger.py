"""The Notifications ledger: one item per notice, every attempt on it, and its outcome.

It is the proof of what happened, so writes are conditional and append-only where it matters:
a notice is created once, an attempt is appended, never rewritten.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from loan_notify.clock import iso, utc_now
from loan_notify.errors import NoticeNotFound
from loan_notify.models import LoanImage
from loan_notify.vocabulary import FINAL_STATES, DeliveryStatus, NoticeState

BY_LOAN_INDEX = "ByLoan"
BY_BORROWER_INDEX = "ByBorrower"


_FINAL_VALUES = {f":final{n}": state.value for n, state in enumerate(sorted(FINAL_STATES))}
_FINAL_PLACEHOLDERS = ", ".join(_FINAL_VALUES)


def _conditional_failed(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


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
            if not _conditional_failed(err):
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
            if not _conditional_failed(err):
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
            if not _conditional_failed(err):
                raise

    def append_attempt(self, notification_id: str, attempt: dict[str, Any], *, state: NoticeState | None = None,
                       reason: str | None = None, pinned: dict[str, Any] | None = None) -> None:
        """Append one finished attempt begun with `begin_attempt`, and clear its pending record. `pinned` (plan,
        policy and template version, content hash) is set with it: the same values on every attempt of a notice.

        The notice's state only moves forward: a final state (DELIVERED by a receipt that overtook this write, say)
        is never overwritten; the attempt is still appended, because it happened. Appending is once only: a
        retried write whose first try landed finds its pending record gone and the attempt already there.
        """
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
                if not _conditional_failed(err):
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
                if not _conditional_failed(err):
                    raise
                if number == len(options) - 1:
                    raise NoticeNotFound(f"attempt {attempt} of {notification_id} is not in the ledger") from err
        if status.confirms:  # the attempt was already at or past this status, or the notice was final
            self.mark_delivered(notification_id, receipt["at"])

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
            if not _conditional_failed(err):
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
            if not _conditional_failed(err):
                raise
            return False

    def newer_notice(self, loan_id: str, version: int) -> str | None:
        """The id of a notice for a later change of the same loan, if the platform has written one."""
        for item in self.by_loan(loan_id):
            if int(item.get("version", -1)) > version and item.get("state") != NoticeState.REJECTED.value:
                return item["notification_id"]
        return None

    def mark_superseded(self, notification_id: str, by: str) -> None:
        self.stand_down(notification_id, NoticeState.SUPERSEDED, "superseded", superseded_by=by)

    def stand_down(self, notification_id: str, state: NoticeState, reason: str, **fields: Any) -> None:
        """The notice will not be sent, on purpose (superseded, opted out): recorded as such."""
        names = {"#state": "state"}
        values: dict[str, Any] = {":state": state.value, ":reason": reason, ":now": iso(self._clock()),
                                  ":started": NoticeState.STARTED.value, ":sent": NoticeState.SENT.value}
        expression = "SET #state = :state, reason = :reason, updated_at = :now"
        for n, (key, value) in enumerate(sorted(fields.items())):
            names[f"#f{n}"] = key
            values[f":f{n}"] = value
            expression += f", #f{n} = :f{n}"
        self._table.update_item(
            Key={"notification_id": notification_id}, UpdateExpression=expression,
            ConditionExpression="#state IN (:started, :sent)", ExpressionAttributeNames=names,
            ExpressionAttributeValues=values)

    def count_review(self, notification_id: str) -> int:
        """Number the next review case of this notice (1, 2, ...)."""
        item = self._table.update_item(
            Key={"notification_id": notification_id}, UpdateExpression="ADD review_cases :one",
            ConditionExpression="attribute_exists(notification_id)", ExpressionAttributeValues={":one": 1},
            ReturnValues="UPDATED_NEW")["Attributes"]
        return int(item["review_cases"])

    def mark_needs_review(self, notification_id: str, case_id: str, reason: str) -> None:
        self._table.update_item(
            Key={"notification_id": notification_id},
            UpdateExpression="SET #state = :state, case_id = :case, reason = :reason, updated_at = :now",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":state": NoticeState.NEEDS_REVIEW.value, ":case": case_id,
                                       ":reason": reason, ":now": iso(self._clock())})

    def record_human_action(self, notification_id: str, action: dict[str, Any], state: NoticeState | None) -> None:
        """A reviewer's decision, with their note: kept here and in the case, never in the execution."""
        expression = "SET human_actions = list_append(if_not_exists(human_actions, :empty), :a), updated_at = :now"
        names: dict[str, str] = {}
        values: dict[str, Any] = {":a": [action], ":empty": [], ":now": iso(self._clock())}
        if state is not None:
            expression += ", #state = :state"
            names["#state"] = "state"
            values[":state"] = state.value
        self._table.update_item(Key={"notification_id": notification_id}, UpdateExpression=expression,
                                ExpressionAttributeValues=values, **({"ExpressionAttributeNames": names}
                                                                     if names else {}))

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
