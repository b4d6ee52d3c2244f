"""Personal data never leaves this module in clear: destinations are stored and logged masked."""

from __future__ import annotations


def mask_phone(phone: str | None) -> str:
    if not phone:
        return ""
    digits = phone.strip()
    if len(digits) <= 6:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def mask_email(email: str | None) -> str:
    if not email or "@" not in email:
        return "***" if email else ""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


def mask_endpoint(arn: str | None) -> str:
    """An SNS platform endpoint ARN identifies one device: keep the platform and the last characters."""
    if not arn:
        return ""
    parts = arn.split("/")
    platform = parts[1] if len(parts) > 2 else "?"
    return f"{platform}/...{arn[-6:]}"
