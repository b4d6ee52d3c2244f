"""Deliveries: one item per provider message id, so a receipt that only names the message finds its notice.

Holds the forward-only delivery status, every receipt (deduplicated), and the Step Functions task token of
the execution waiting for confirmation (used once).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from loan_notify.clock import iso, utc_now
from loan_notify.vocabulary import DeliveryStatus


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
                    status: DeliveryStatus) -> tuple[bool, dict[str, Any] | None]:
        """Append the receipt once (by key) and move the status forward only.

        Returns (new_receipt, item_after). A duplicate receipt returns (False, None) and changes nothing.
        """
        try:
            item = self._table.update_item(
                Key={"message_id": message_id},
                UpdateExpression="SET receipts = list_append(receipts, :r), updated_at = :now "
                                 "ADD receipt_keys :k",
                ConditionExpression="attribute_exists(message_id) AND NOT contains(receipt_keys, :key)",
                ExpressionAttributeValues={":r": [receipt], ":now": iso(self._clock()), ":k": {receipt_key},
                                           ":key": receipt_key},
                ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as err:
            if _conditional_failed(err):
                return False, None
            raise
        try:
            item = self._table.update_item(
                Key={"message_id": message_id},
                UpdateExpression="SET #s = :s, status_rank = :rank",
                ConditionExpression="status_rank < :rank",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": status.value, ":rank": status.rank},
                ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as err:
            if not _conditional_failed(err):
                raise
        return True, item

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
