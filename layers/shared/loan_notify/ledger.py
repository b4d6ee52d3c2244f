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
from loan_notify.models import LoanImage
from loan_notify.vocabulary import DeliveryStatus, NoticeState

BY_LOAN_INDEX = "ByLoan"
BY_BORROWER_INDEX = "ByBorrower"


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

    def append_attempt(self, notification_id: str, attempt: dict[str, Any], *, state: NoticeState | None = None,
                       reason: str | None = None, pinned: dict[str, Any] | None = None) -> None:
        """Append one attempt. `pinned` (plan, policy and template version, content hash) is set with it:
        the same values on every attempt of a notice, so the first write records them."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {":attempt": [attempt], ":now": iso(self._clock())}
        expression = "SET attempts = list_append(attempts, :attempt), updated_at = :now"
        for n, (key, value) in enumerate(sorted((pinned or {}).items())):
            names[f"#p{n}"] = key
            values[f":p{n}"] = value
            expression += f", #p{n} = :p{n}"
        if state is not None:
            expression += ", #state = :state"
            names["#state"] = "state"
            values[":state"] = state.value
        if reason is not None:
            expression += ", reason = :reason"
            values[":reason"] = reason
        self._table.update_item(
            Key={"notification_id": notification_id},
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
            ConditionExpression="attribute_exists(notification_id)",
            **({"ExpressionAttributeNames": names} if names else {}),
        )

    def record_receipt(self, notification_id: str, attempt: int, receipt: dict[str, Any],
                       status: DeliveryStatus) -> None:
        """Store a receipt on its attempt, with the attempt's forward-only delivery status.

        A confirming status also moves the notice to DELIVERED (never back from it).
        """
        index = attempt - 1  # attempts are appended in order, numbered from 1
        expression = (f"SET attempts[{index}].receipts = list_append(if_not_exists(attempts[{index}].receipts, "
                      f":empty), :r), attempts[{index}].delivery_status = :status, updated_at = :now")
        values: dict[str, Any] = {":r": [receipt], ":empty": [], ":status": status.value,
                                  ":now": iso(self._clock())}
        if status.confirms:  # one write in the usual case: the receipt, and the notice becomes DELIVERED
            try:
                self._table.update_item(
                    Key={"notification_id": notification_id},
                    UpdateExpression=expression + ", #state = :delivered, "
                                                  "delivered_at = if_not_exists(delivered_at, :at)",
                    ConditionExpression="#state IN (:started, :sent)",
                    ExpressionAttributeNames={"#state": "state"},
                    ExpressionAttributeValues={**values, ":delivered": NoticeState.DELIVERED.value,
                                               ":at": receipt["at"], ":started": NoticeState.STARTED.value,
                                               ":sent": NoticeState.SENT.value},
                )
                return
            except ClientError as err:
                if not _conditional_failed(err):
                    raise
        self._table.update_item(
            Key={"notification_id": notification_id}, UpdateExpression=expression,
            ExpressionAttributeValues=values, ConditionExpression="attribute_exists(notification_id)",
        )

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
