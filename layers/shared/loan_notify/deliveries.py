"""Deliveries: one item per provider message id, so a receipt that only names the message finds its notice.

Holds the forward-only delivery status, every receipt (deduplicated), and the Step Functions task token of
the execution waiting for confirmation (used once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from loan_notify.clock import iso, utc_now
from loan_notify.vocabulary import DeliveryStatus


@dataclass(frozen=True)
class ReceiptWrite:
    FORWARD = "forward"  # stored, and the status moved forward to `status`
    KEPT = "kept"  # stored; the status was already at or past it (`status` is the current one)
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"  # no such message

    kind: str
    before: dict[str, Any]  # the item as it was (notification_id, attempt, channel, provider...)
    status: DeliveryStatus
    token: str | None  # the waiting execution's token, taken by this write


def _conditional_failed(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class Deliveries:
    def __init__(self, table: Any, clock=utc_now, retention_days: int = 400) -> None:
        self._table = table
        self._clock = clock
        self._retention_s = retention_days * 86400

    def record_sent(self, message_id: str, *, notification_id: str, attempt: int, channel: str, provider: str,
                    task_token: str | None, confirms: bool) -> None:
        now = self._clock()
        item: dict[str, Any] = {
            "message_id": message_id, "notification_id": notification_id, "attempt": attempt, "channel": channel,
            "provider": provider, "status": DeliveryStatus.SENT.value, "status_rank": DeliveryStatus.SENT.rank,
            "receipts": [], "receipt_keys": {"-"}, "created_at": iso(now), "updated_at": iso(now),
            "expires_at": int(now.timestamp()) + self._retention_s, "confirms": confirms,
        }
        if task_token:
            item.update(task_token=task_token, callback="WAITING")
        self._table.put_item(Item=item)

    def rearm(self, message_id: str, task_token: str) -> dict[str, Any]:
        """A retried send step found the message already sent: wait on the new token instead."""
        return self._table.update_item(
            Key={"message_id": message_id}, UpdateExpression="SET task_token = :t, callback = :w",
            ExpressionAttributeValues={":t": task_token, ":w": "WAITING"}, ReturnValues="ALL_NEW")["Attributes"]

    def get(self, message_id: str) -> dict[str, Any] | None:
        return self._table.get_item(Key={"message_id": message_id}, ConsistentRead=True).get("Item")

    def add_receipt(self, message_id: str, receipt_key: str, receipt: dict[str, Any],
                    status: DeliveryStatus) -> ReceiptWrite:
        """Append the receipt once (by key) and move the status forward only, in one write in the usual case.

        When the receipt settles the message (confirms or fails it) the same write takes the waiting task
        token: exactly one receipt ever sees `callback == WAITING` in the item as it was.
        """
        base = "SET receipts = list_append(receipts, :r), updated_at = :now"
        values: dict[str, Any] = {":r": [receipt], ":now": iso(self._clock()), ":k": {receipt_key},
                                  ":key": receipt_key}
        new_receipt = "attribute_exists(message_id) AND NOT contains(receipt_keys, :key)"
        forward = base + ", #s = :s, status_rank = :rank"
        if status.confirms or status.fails:
            forward += ", callback = :done"
            values[":done"] = "DONE"
        try:
            old = self._table.update_item(
                Key={"message_id": message_id}, UpdateExpression=forward + " ADD receipt_keys :k",
                ConditionExpression=f"{new_receipt} AND status_rank < :rank",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={**values, ":s": status.value, ":rank": status.rank},
                ReturnValues="ALL_OLD")["Attributes"]
            token = old.get("task_token") if old.get("callback") == "WAITING" and ":done" in values else None
            return ReceiptWrite(ReceiptWrite.FORWARD, old, status, token)
        except ClientError as err:
            if not _conditional_failed(err):
                raise
        values.pop(":done", None)
        try:  # not a step forward: keep the receipt, leave the status
            old = self._table.update_item(
                Key={"message_id": message_id}, UpdateExpression=base + " ADD receipt_keys :k",
                ConditionExpression=new_receipt, ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD")["Attributes"]
            return ReceiptWrite(ReceiptWrite.KEPT, old, DeliveryStatus(old["status"]), None)
        except ClientError as err:
            if not _conditional_failed(err):
                raise
        if self.get(message_id) is None:
            return ReceiptWrite(ReceiptWrite.UNKNOWN, {}, status, None)
        return ReceiptWrite(ReceiptWrite.DUPLICATE, {}, status, None)

    def claim_callback(self, message_id: str) -> str | None:
        """Take the waiting task token exactly once; None if nobody waits (any more)."""
        try:
            item = self._table.update_item(
                Key={"message_id": message_id}, UpdateExpression="SET callback = :done",
                ConditionExpression="callback = :waiting",
                ExpressionAttributeValues={":done": "DONE", ":waiting": "WAITING"},
                ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as err:
            if _conditional_failed(err):
                return None
            raise
        return item.get("task_token")
