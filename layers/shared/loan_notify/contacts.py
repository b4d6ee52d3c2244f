"""Contact changes and phone verification by one-time code.

A new phone number is held as pending and used for nothing until the borrower proves they receive SMS on it:
a 6-digit code, stored only as a salted PBKDF2 hash, expiring after 10 minutes, compared in constant time; five
wrong codes lock verification for 15 minutes.

Abuse limits (loan_notify.limits): every code or link sent counts per borrower, per destination and in distinct
destinations per borrower, before anything is sent; every code check counts per borrower before it is compared,
across codes (a fresh code does not reset it). Only numbers in the countries served, of a kind a text may go to,
are accepted (loan_notify.reach).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from loan_notify.clock import iso, utc_now
from loan_notify.errors import PermanentChannelError, conditional_check_failed
from loan_notify.limits import Limits
from loan_notify.reach import SERVED_COUNTRIES_DEFAULT, sms_destination

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


def start_phone_change(borrower_id: str, phone: str, *, table: Any, sms: Any, limits: Limits,
                       served: frozenset[str] = SERVED_COUNTRIES_DEFAULT, clock=utc_now) -> dict[str, Any]:
    """Hold the new number as pending and text it a code. Raises ValueError ("phone: <why>") for a number a text
    may not go to, VerificationError while locked, LimitExceeded over a send limit (nothing sent)."""
    try:
        number = sms_destination(phone, served)
    except PermanentChannelError as err:
        raise ValueError(f"phone: {err.reason}: {err}") from err
    now = clock()
    item = table.get_item(Key={"borrower_id": borrower_id}).get("Item") or {}
    locked_until = (item.get("verification") or {}).get("locked_until")
    if locked_until and _parse(locked_until) > now:
        raise VerificationError("locked", f"too many wrong codes; try again after {locked_until}")
    limits.take_send(borrower_id, "sms", number)
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


def _count_attempt(table: Any, borrower_id: str, code_hash: str) -> int | None:
    """Count one check of this code before comparing it (atomic: concurrent checks each get their own number).
    None: the code was replaced meanwhile, or its tries are used up."""
    try:
        item = table.update_item(
            Key={"borrower_id": borrower_id},
            UpdateExpression="SET verification.attempts = verification.attempts + :one",
            ConditionExpression="verification.code_hash = :h AND verification.attempts < :max",
            ExpressionAttributeValues={":one": 1, ":h": code_hash, ":max": MAX_ATTEMPTS},
            ReturnValues="ALL_NEW")["Attributes"]
    except ClientError as err:
        if conditional_check_failed(err):
            return None
        raise
    return int(item["verification"]["attempts"])


def verify_phone(borrower_id: str, code: str, *, table: Any, limits: Limits, clock=utc_now) -> dict[str, Any]:
    """Check a code. Each check is counted before it is compared: per borrower and hour across every code
    (LimitExceeded), and per code (five, then locked). The right code is used once."""
    limits.take_check(borrower_id)
    now = clock()
    item = table.get_item(Key={"borrower_id": borrower_id}, ConsistentRead=True).get("Item") or {}
    pending = item.get("verification") or {}
    if not item.get("pending_phone") or "code_hash" not in pending:
        raise VerificationError("nothing_to_verify", "no contact change is waiting for a code")
    if pending.get("locked_until") and _parse(pending["locked_until"]) > now:
        raise VerificationError("locked", f"too many wrong codes; try again after {pending['locked_until']}")
    if _parse(pending["expires_at"]) <= now:
        raise VerificationError("expired", "the code has expired; change the contact again for a new one")
    attempts = _count_attempt(table, borrower_id, pending["code_hash"])
    if attempts is None:
        raise VerificationError("locked", "too many wrong codes for this code, or it was replaced")
    if not hmac.compare_digest(_hash(code, bytes.fromhex(pending["salt"])), pending["code_hash"]):
        if attempts >= MAX_ATTEMPTS:
            until = iso(now + LOCK_FOR)
            with contextlib.suppress(ClientError):  # replaced meanwhile: the new code has its own tries
                table.update_item(Key={"borrower_id": borrower_id},
                                  UpdateExpression="SET verification.locked_until = :l",
                                  ConditionExpression="verification.code_hash = :h",
                                  ExpressionAttributeValues={":l": until, ":h": pending["code_hash"]})
            raise VerificationError("locked", f"too many wrong codes; try again after {until}")
        raise VerificationError("wrong_code", f"wrong code ({MAX_ATTEMPTS - attempts} tries left)")
    try:
        table.update_item(
            Key={"borrower_id": borrower_id},
            UpdateExpression="SET phone = :p, phone_health = :h REMOVE pending_phone, verification",
            ConditionExpression="verification.code_hash = :code",  # used once, and only for its own number
            ExpressionAttributeValues={":p": item["pending_phone"], ":code": pending["code_hash"],
                                       ":h": {"verified": True, "verified_at": iso(now)}})
    except ClientError as err:
        if conditional_check_failed(err):
            raise VerificationError("nothing_to_verify", "this code was already used or replaced") from err
        raise
    return {"verified": "phone"}


def signing_secret(secretsmanager: Any, arn: str, purpose: str) -> bytes:
    """The Secrets Manager secret that signs email links, page tokens and unsubscribe links: never an empty key. A
    missing ARN or an empty secret raises RuntimeError naming `purpose`."""
    if not arn:
        raise RuntimeError(f"VERIFY_SECRET_ARN is not set: {purpose}")
    secret = secretsmanager.get_secret_value(SecretId=arn).get("SecretString", "")
    if not secret:
        raise RuntimeError(f"the signing secret is empty: {purpose}")
    return secret.encode()


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


def mailbox(address: str) -> str:
    """The mailbox an address reaches, for counting sends to it: case folded, and without a sub-address
    ("name+tag@" reaches name@ at the large providers), so one mailbox cannot be flooded through many tags."""
    local, at, domain = address.lower().rpartition("@")
    return f"{local.split('+', 1)[0] or local}{at}{domain}"


def start_email_change(borrower_id: str, email: str, *, table: Any, mailer: Any, secret: bytes, link_base: str,
                       limits: Limits, clock=utc_now) -> dict[str, Any]:
    """Hold the new address as pending and mail it a signed link. LimitExceeded over a send limit (nothing sent)."""
    try:
        from email_validator import validate_email  # on first use: a cold start that checks no address skips it

        address = validate_email(email, check_deliverability=False).normalized
    except ValueError as err:  # email_validator's EmailNotValidError is a ValueError
        raise ValueError("email: not a valid email address") from err
    limits.take_send(borrower_id, "email", mailbox(address))
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
    if not isinstance(claims, dict) or set(claims) != {"b", "e", "x"} or not all(
            isinstance(v, str) for v in claims.values()):
        raise VerificationError("invalid_link", "this confirmation link is not valid")
    if _parse(claims["x"]) <= clock():
        raise VerificationError("expired", "this confirmation link has expired; change the address again")
    try:
        table.update_item(
            Key={"borrower_id": claims["b"]},
            UpdateExpression="SET email = :e, email_health = :h REMOVE pending_email",
            ConditionExpression="pending_email = :e",  # a link for an older change does nothing
            ExpressionAttributeValues={":e": claims["e"], ":h": {"verified": True, "verified_at": iso(clock())}})
    except ClientError as err:
        if conditional_check_failed(err):
            raise VerificationError("invalid_link", "this confirmation link is no longer valid") from err
        raise
    return {"verified": "email"}
