"""Contact changes and phone verification by one-time code.

A new phone number is held as pending and used for nothing until the borrower proves they receive SMS on it:
a 6-digit code, stored only as a salted PBKDF2 hash, expiring after 10 minutes, compared in constant time; five
wrong codes lock verification for 15 minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from loan_notify.channels import normalise_phone
from loan_notify.clock import iso, utc_now
from loan_notify.errors import PermanentChannelError

CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
LOCK_FOR = timedelta(minutes=15)
_ITERATIONS = 50_000


class VerificationError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _hash(code: str, salt: bytes) -> str:
    return hashlib.pbkdf2_hmac("sha256", code.encode(), salt, _ITERATIONS).hex()


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def start_phone_change(borrower_id: str, phone: str, *, table: Any, sms: Any, clock=utc_now) -> dict[str, Any]:
    """Hold the new number as pending and text it a code. Raises ValueError for a number that is not valid."""
    try:
        number = normalise_phone(phone)
    except PermanentChannelError as err:
        raise ValueError("phone: not a valid phone number") from err
    now = clock()
    item = table.get_item(Key={"borrower_id": borrower_id}).get("Item") or {}
    locked_until = (item.get("verification") or {}).get("locked_until")
    if locked_until and _parse(locked_until) > now:
        raise VerificationError("locked", f"too many wrong codes; try again after {locked_until}")
    code = f"{secrets.randbelow(1_000_000):06d}"
    salt = secrets.token_bytes(16)
    table.update_item(
        Key={"borrower_id": borrower_id},
        UpdateExpression="SET pending_phone = :p, verification = :v",
        ConditionExpression="attribute_exists(borrower_id)",
        ExpressionAttributeValues={":p": number, ":v": {
            "channel": "SMS", "code_hash": _hash(code, salt), "salt": salt.hex(), "attempts": 0,
            "expires_at": iso(now + CODE_TTL)}})
    sms.publish(PhoneNumber=number, Message=f"Your verification code is {code}. It expires in 10 minutes.",
                MessageAttributes={"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}})
    return {"pending": "phone", "expires_at": iso(now + CODE_TTL)}


def verify_phone(borrower_id: str, code: str, *, table: Any, clock=utc_now) -> dict[str, Any]:
    now = clock()
    item = table.get_item(Key={"borrower_id": borrower_id}, ConsistentRead=True).get("Item") or {}
    pending = item.get("verification") or {}
    if not item.get("pending_phone") or "code_hash" not in pending:
        raise VerificationError("nothing_to_verify", "no contact change is waiting for a code")
    if pending.get("locked_until") and _parse(pending["locked_until"]) > now:
        raise VerificationError("locked", f"too many wrong codes; try again after {pending['locked_until']}")
    if _parse(pending["expires_at"]) <= now:
        raise VerificationError("expired", "the code has expired; change the contact again for a new one")
    if not hmac.compare_digest(_hash(code, bytes.fromhex(pending["salt"])), pending["code_hash"]):
        attempts = int(pending.get("attempts", 0)) + 1
        update = {":a": attempts}
        expression = "SET verification.attempts = :a"
        if attempts >= MAX_ATTEMPTS:
            expression += ", verification.locked_until = :l"
            update[":l"] = iso(now + LOCK_FOR)
        table.update_item(Key={"borrower_id": borrower_id}, UpdateExpression=expression,
                          ExpressionAttributeValues=update)
        if attempts >= MAX_ATTEMPTS:
            raise VerificationError("locked", f"too many wrong codes; try again after {update[':l']}")
        raise VerificationError("wrong_code", f"wrong code ({MAX_ATTEMPTS - attempts} tries left)")
    table.update_item(
        Key={"borrower_id": borrower_id},
        UpdateExpression="SET phone = :p, phone_health = :h REMOVE pending_phone, verification",
        ExpressionAttributeValues={":p": item["pending_phone"], ":h": {"verified": True, "verified_at": iso(now)}})
    return {"verified": "phone"}
