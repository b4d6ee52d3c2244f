from __future__ import annotations

import hashlib
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from loan_notify.errors import BorrowerNotFound, BorrowerRecordInvalid, fault_fields
from loan_notify.models import Borrower, Preferences
from loan_notify.vocabulary import Channel

_HEALTH = {Channel.SMS: "phone_health", Channel.EMAIL: "email_health", Channel.PUSH: "push_health"}
_CONTACT = {Channel.SMS: "phone", Channel.EMAIL: "email", Channel.PUSH: "push_endpoint_arn"}


def _ref(borrower_id: str, value: str) -> str:
    return hashlib.sha256(f"{borrower_id}|{value}".encode()).hexdigest()[:24]


def contact_ref(borrower_id: str, value: str | None) -> str:
    """A stable reference to one contact value of one borrower (kept with each message instead of the value)."""
    return _ref(borrower_id, value) if value else ""


class Borrowers:
    """Repository over the Borrowers table (a boto3 Table resource is passed in)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, borrower_id: str) -> Borrower:
        item = self._table.get_item(Key={"borrower_id": borrower_id}).get("Item")
        if item is None:
            raise BorrowerNotFound(f"borrower {borrower_id} does not exist")
        try:
            return Borrower.model_validate(item)
        except ValidationError as err:
            fields = ", ".join(f"{f['field']} ({f['type']})" for f in fault_fields(err))
            raise BorrowerRecordInvalid(f"borrower {borrower_id}'s record does not fit the data contract: "
                                        f"{fields}") from None  # not chained: pydantic's message quotes the values

    def set_preferences(self, borrower_id: str, preferences: Preferences) -> None:
        quiet = preferences.quiet_hours
        self._table.update_item(
            Key={"borrower_id": borrower_id},
            UpdateExpression="SET preferred_channels = :c, #locale = :l, quiet_hours = :q, opt_out_non_critical = :o",
            ConditionExpression="attribute_exists(borrower_id)", ExpressionAttributeNames={"#locale": "locale"},
            ExpressionAttributeValues={
                ":c": [c.value for c in preferences.channels], ":l": preferences.language.value,
                ":q": {"start": quiet.start.strftime("%H:%M"), "end": quiet.end.strftime("%H:%M")} if quiet else None,
                ":o": preferences.opt_out_non_critical})

    def opt_out_non_critical(self, borrower_id: str) -> None:
        """The one-click unsubscribe: only this preference changes (BorrowerNotFound for an unknown borrower)."""
        try:
            self._table.update_item(Key={"borrower_id": borrower_id}, UpdateExpression="SET opt_out_non_critical = :o",
                                    ConditionExpression="attribute_exists(borrower_id)",
                                    ExpressionAttributeValues={":o": True})
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise BorrowerNotFound(f"borrower {borrower_id} does not exist") from err
            raise

    def mark(self, borrower_id: str, channel: Channel, effect: str, contact_ref: str | None = None) -> bool:
        """Write a receipt's verdict back (bounced, opted_out) so later notices skip the dead contact.

        With `contact_ref` (see `contact_ref`), only if the borrower's contact is still the one the message went
        to, checked in the same conditional write: a late bounce for an old number never marks the new one.
        """
        if effect not in ("bounced", "opted_out") or channel not in _HEALTH:
            return False
        health, field = _HEALTH[channel], _CONTACT[channel]
        names, values = {"#h": health}, {}
        condition = "attribute_exists(borrower_id)"
        if contact_ref is not None:
            item = self._table.get_item(Key={"borrower_id": borrower_id}, ConsistentRead=True).get("Item") or {}
            current = item.get(field)
            if not current or _ref(borrower_id, current) != contact_ref:
                return False
            condition += " AND #c = :current"
            names["#c"] = field
            values[":current"] = current
        try:
            self._table.update_item(Key={"borrower_id": borrower_id}, UpdateExpression="SET #h = if_not_exists(#h, :e)",
                                    ConditionExpression=condition, ExpressionAttributeNames=names,
                                    ExpressionAttributeValues={**values, ":e": {}})
            self._table.update_item(Key={"borrower_id": borrower_id}, UpdateExpression="SET #h.#effect = :true",
                                    ConditionExpression=condition,
                                    ExpressionAttributeNames={**names, "#effect": effect},
                                    ExpressionAttributeValues={**values, ":true": True})
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def reset(self, borrower_id: str, channel: Channel) -> None:
        """A reviewer corrected this contact: forget what was known about the old one."""
        self._table.update_item(
            Key={"borrower_id": borrower_id}, UpdateExpression="SET #h = :fresh",
            ConditionExpression="attribute_exists(borrower_id)",
            ExpressionAttributeNames={"#h": _HEALTH[channel]}, ExpressionAttributeValues={":fresh": {}})
