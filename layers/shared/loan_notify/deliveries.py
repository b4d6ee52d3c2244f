"""Deliveries: one item per provider message id, so a receipt that only names the message finds its notice.

Holds the forward-only delivery status, the first receipt of each kind with a count of all of them (bounded,
however many opens and clicks arrive), and the Step Functions task token of the execution waiting for
confirmation. The token is marked answered only after the callback was made, so a receipt whose processing
failed half way is finished by its retry instead of being skipped as a duplicate. A receipt that arrives before
the send was recorded is kept ("early") and settles the send when its record lands.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from loan_notify.clock import iso, utc_now
from loan_notify.errors import conditional_check_failed, put_if_absent
from loan_notify.vocabulary import DeliveryStatus

WAITING, DONE = "WAITING", "DONE"


@dataclass(frozen=True)
class ReceiptWrite:
    STORED = "stored"  # the message is known: `item` is it after this write
    EARLY = "early"  # the send is not recorded yet: kept until it is

    kind: str
    item: dict[str, Any]
    status: DeliveryStatus  # the message's status after this write (forward-only)
    new: bool  # the first receipt of its kind for this message


def settled(item: dict[str, Any]) -> bool:
    status = DeliveryStatus(item.get("status", DeliveryStatus.SENT.value))
    return status.confirms or status.fails


class Deliveries:
    def __init__(self, table: Any, clock=utc_now, retention_days: int = 400) -> None:
        self._table = table
        self._clock = clock
        self._retention_s = retention_days * 86400

    def record_sent(self, message_id: str, *, notification_id: str, attempt: int, channel: str, provider: str,
                    task_token: str | None, confirms: bool, borrower_id: str = "", contact_ref: str = ""
                    ) -> dict[str, Any]:
        """Record (or re-record, on a retried step) a message a provider accepted, with the waiting execution's
        token. Keeps any receipt that arrived first. Returns the item as stored.

        The usual case, a message nobody wrote about yet, is one conditional put of the whole item; when the item
        exists (a receipt came first, or the step is retried) the update below merges into it instead."""
        now = self._clock()
        first = {"message_id": message_id, "notification_id": notification_id, "attempt": Decimal(attempt),
                 "channel": channel, "provider": provider, "confirms": confirms, "borrower_id": borrower_id,
                 "contact_ref": contact_ref, "status": DeliveryStatus.SENT.value,
                 "status_rank": Decimal(DeliveryStatus.SENT.rank), "receipts": {}, "created_at": iso(now),
                 "updated_at": iso(now), "expires_at": Decimal(int(now.timestamp()) + self._retention_s)}
        if task_token:
            first.update(task_token=task_token, callback=WAITING)
        if put_if_absent(self._table, first, "message_id"):
            return first
        values: dict[str, Any] = {
            ":n": notification_id, ":a": attempt, ":c": channel, ":p": provider, ":conf": confirms,
            ":b": borrower_id, ":ref": contact_ref, ":sent": DeliveryStatus.SENT.value,
            ":zero": DeliveryStatus.SENT.rank, ":empty": {}, ":now": iso(now),
            ":exp": int(now.timestamp()) + self._retention_s,
        }
        expression = ("SET notification_id = :n, attempt = :a, channel = :c, provider = :p, confirms = :conf, "
                      "borrower_id = :b, contact_ref = if_not_exists(contact_ref, :ref), "
                      "#s = if_not_exists(#s, :sent), "
                      "status_rank = if_not_exists(status_rank, :zero), receipts = if_not_exists(receipts, :empty), "
                      "created_at = if_not_exists(created_at, :now), updated_at = :now, expires_at = :exp")
        if task_token:
            expression += ", task_token = :t, callback = :w"
            values.update({":t": task_token, ":w": WAITING})
        return self._table.update_item(
            Key={"message_id": message_id}, UpdateExpression=expression, ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values, ReturnValues="ALL_NEW")["Attributes"]

    def arm(self, message_id: str, task_token: str) -> dict[str, Any]:
        """The execution waits for this message's receipt on `task_token` from now on. Returns the item."""
        return self._table.update_item(
            Key={"message_id": message_id}, UpdateExpression="SET task_token = :t, callback = :w",
            ConditionExpression="attribute_exists(notification_id)",
            ExpressionAttributeValues={":t": task_token, ":w": WAITING}, ReturnValues="ALL_NEW")["Attributes"]

    def get(self, message_id: str) -> dict[str, Any] | None:
        return self._table.get_item(Key={"message_id": message_id}, ConsistentRead=True).get("Item")

    def add_receipt(self, message_id: str, kind: str, receipt: dict[str, Any],
                    status: DeliveryStatus) -> ReceiptWrite:
        """Keep the first receipt of each kind, count every one, and move the status forward only: one write in
        the usual case. Never takes the waiting token: the caller answers the execution, then `answered`."""
        receipt = {**receipt, "rid": uuid.uuid4().hex}
        names = {"#s": "status", "#k": kind}
        values: dict[str, Any] = {":r": receipt, ":now": iso(self._clock()), ":one": 1}
        keep = "SET receipts.#k = if_not_exists(receipts.#k, :r), updated_at = :now ADD receipt_count :one"
        forward = ("SET receipts.#k = if_not_exists(receipts.#k, :r), updated_at = :now, #s = :s, "
                   "status_rank = :rank ADD receipt_count :one")
        known = "attribute_exists(notification_id)"
        # Forward if the receipt ranks higher, else keep it beside the status. Each write states the rank it
        # expects, so a send recorded, or another receipt applied, between two tries sends us round again
        # instead of keeping a "failed" next to a status that still reads "sent".
        tries = (
            (forward, f"{known} AND status_rank < :rank", {":s": status.value, ":rank": status.rank}, names),
            (keep, f"{known} AND status_rank >= :rank", {":rank": status.rank}, {"#k": kind}),
        )
        for _round in range(5):
            for update, condition, extra, attribute_names in tries:
                try:
                    item = self._table.update_item(
                        Key={"message_id": message_id}, UpdateExpression=update, ConditionExpression=condition,
                        ExpressionAttributeNames=attribute_names, ExpressionAttributeValues={**values, **extra},
                        ReturnValues="ALL_NEW")["Attributes"]
                    return ReceiptWrite(ReceiptWrite.STORED, item, DeliveryStatus(item["status"]),
                                        item["receipts"][kind].get("rid") == receipt["rid"])
                except ClientError as err:
                    if not conditional_check_failed(err):
                        raise
            if not (self.get(message_id) or {}).get("notification_id"):
                return self._keep_early(message_id, kind, receipt, status)
        raise RuntimeError(f"receipt for {message_id} kept losing the race with other writes")

    def _keep_early(self, message_id: str, kind: str, receipt: dict[str, Any],
                    status: DeliveryStatus) -> ReceiptWrite:
        now = self._clock()
        if put_if_absent(self._table, {
            "message_id": message_id, "status": status.value, "status_rank": status.rank,
            "receipts": {kind: receipt}, "receipt_count": 1, "early": True, "created_at": iso(now),
            "updated_at": iso(now), "expires_at": int(now.timestamp()) + self._retention_s,
        }, "message_id"):
            return ReceiptWrite(ReceiptWrite.EARLY, {}, status, True)
        # a second early receipt, or the send's record landed meanwhile: go round again
        item = self.get(message_id) or {}
        if item.get("notification_id"):
            return self.add_receipt(message_id, kind, receipt, status)
        try:
            self._table.update_item(
                Key={"message_id": message_id},
                UpdateExpression="SET receipts.#k = if_not_exists(receipts.#k, :r), #s = :s, status_rank = :rank "
                                 "ADD receipt_count :one",
                ConditionExpression="attribute_not_exists(notification_id) AND status_rank < :rank",
                ExpressionAttributeNames={"#s": "status", "#k": kind},
                ExpressionAttributeValues={":r": receipt, ":s": status.value, ":rank": status.rank, ":one": 1})
        except ClientError as err:
            if not conditional_check_failed(err):
                raise
            try:
                self._table.update_item(
                    Key={"message_id": message_id},
                    UpdateExpression="SET receipts.#k = if_not_exists(receipts.#k, :r) ADD receipt_count :one",
                    ConditionExpression="attribute_not_exists(notification_id) AND status_rank >= :rank",
                    ExpressionAttributeNames={"#k": kind},
                    ExpressionAttributeValues={":r": receipt, ":one": 1, ":rank": status.rank})
            except ClientError as again:
                if not conditional_check_failed(again):
                    raise
                return self.add_receipt(message_id, kind, receipt, status)  # the send landed meanwhile
        return ReceiptWrite(ReceiptWrite.EARLY, {}, status, True)

    def answered(self, message_id: str, token: str) -> None:
        """The waiting execution was told (or is gone): nobody needs to be told again about this token."""
        try:
            self._table.update_item(
                Key={"message_id": message_id}, UpdateExpression="SET callback = :done",
                ConditionExpression="task_token = :t", ExpressionAttributeValues={":done": DONE, ":t": token})
        except ClientError as err:
            if not conditional_check_failed(err):
                raise
