"""Contact changes and phone verification by one-time code.

A new phone number is held as pending and used for nothing until the borrower proves they receive SMS on it:
a 6-digit code, stored only as a salted PBKDF2 hash, expiring after 10 minutes, compared in constant time; five
wrong codes lock verification for 15 minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email

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


# ------------------------------------------------------------------ email: a signed, expiring confirmation link
LINK_TTL = timedelta(hours=24)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(payload: dict[str, Any], secret: bytes) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())}"


def unsign(token: str, secret: bytes) -> dict[str, Any]:
    try:
        body, signature = token.split(".", 1)
        expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(signature, expected):
            raise ValueError("bad signature")
        return json.loads(_unb64(body))
    except (ValueError, TypeError) as err:
        raise VerificationError("invalid_link", "this confirmation link is not valid") from err


def start_email_change(borrower_id: str, email: str, *, table: Any, mailer: Any, secret: bytes, link_base: str,
                       clock=utc_now) -> dict[str, Any]:
    try:
        address = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as err:
        raise ValueError("email: not a valid email address") from err
    now = clock()
    expires = now + LINK_TTL
    token = sign({"b": borrower_id, "e": address, "x": iso(expires)}, secret)
    table.update_item(Key={"borrower_id": borrower_id}, UpdateExpression="SET pending_email = :e",
                      ConditionExpression="attribute_exists(borrower_id)", ExpressionAttributeValues={":e": address})
    mailer(address, "Confirm your email address",
           f"Open this link within 24 hours to receive loan notices at this address: {link_base}?token={token}")
    return {"pending": "email", "expires_at": iso(expires)}


def confirm_email(token: str, *, table: Any, secret: bytes, clock=utc_now) -> dict[str, Any]:
    claims = unsign(token, secret)
    if _parse(claims["x"]) <= clock():
        raise VerificationError("expired", "this confirmation link has expired; change the address again")
    try:
        table.update_item(
            Key={"borrower_id": claims["b"]},
            UpdateExpression="SET email = :e, email_health = :h REMOVE pending_email",
            ConditionExpression="pending_email = :e",  # a link for an older change does nothing
            ExpressionAttributeValues={":e": claims["e"], ":h": {"verified": True, "verified_at": iso(clock())}})
    except Exception as err:
        if "ConditionalCheckFailed" in str(err):
            raise VerificationError("invalid_link", "this confirmation link is no longer valid") from err
        raise
    return {"verified": "email"}
