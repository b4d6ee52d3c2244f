"""Where the lender may send an SMS: the countries it serves and the kinds of number a text may go to.

One rule for both paths: a contact change (refused with 400 naming the field) and a notice (the number is a bad
contact with a recorded reason, so the notice moves on to its next channel or to a person). In AWS the same
country list is enforced below the code too, by the SMS protect configuration built from the same parameter.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from loan_notify.errors import PermanentChannelError

SERVED_COUNTRIES_DEFAULT = frozenset({"CN", "US"})  # default of the ServedCountries template parameter
_ALPHA2 = re.compile(r"^[A-Z]{2}$")
NON_GEOGRAPHIC = "001"  # phonenumbers' region for +800, +808, +870, +878, +881 (satellite), +882, +883, +888, +979

@functools.cache
def _kinds() -> tuple[frozenset, dict]:
    """phonenumbers' number types: the ones a text may go to (an allow-list), and a reason for each refused one.
    Built (and phonenumbers imported, with its metadata) on the first check, not at import."""
    from phonenumbers import PhoneNumberType

    sms_types = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
    type_reasons = {
        PhoneNumberType.PREMIUM_RATE: "premium_rate_number",
        PhoneNumberType.SHARED_COST: "shared_cost_number",
        PhoneNumberType.UAN: "uan_number",
        PhoneNumberType.TOLL_FREE: "toll_free_number",
        PhoneNumberType.VOIP: "voip_number",
        PhoneNumberType.PERSONAL_NUMBER: "personal_number",
        PhoneNumberType.PAGER: "pager_number",
        PhoneNumberType.VOICEMAIL: "voicemail_number",
        PhoneNumberType.FIXED_LINE: "fixed_line_number",
    }
    return sms_types, type_reasons


def served_countries(value: str | Iterable[str] | None) -> frozenset[str]:
    """The ServedCountries parameter (SERVED_COUNTRIES, "CN,US"): ISO 3166 alpha-2 codes. Empty: the default."""
    codes = value.split(",") if isinstance(value, str) else list(value or [])
    served = frozenset(c.strip().upper() for c in codes if c.strip())
    bad = sorted(c for c in served if not _ALPHA2.match(c))
    if bad:
        raise ValueError(f"SERVED_COUNTRIES: not ISO 3166 alpha-2 codes: {bad}")
    return served or SERVED_COUNTRIES_DEFAULT


def sms_destination(phone: str | None, served: frozenset[str] = SERVED_COUNTRIES_DEFAULT) -> str:
    """The number in E.164 if a text may go there; else PermanentChannelError whose `reason` says why not
    (no_contact, invalid_phone, non_geographic_number, country_not_served, or the number's type, e.g.
    premium_rate_number). Unassigned ranges are invalid numbers to phonenumbers' metadata."""
    if not phone:
        raise PermanentChannelError("no phone number on file", reason="no_contact")
    import phonenumbers  # on the first check (its metadata is large): a cold start that texts nobody skips it

    sms_types, type_reasons = _kinds()
    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException as err:
        raise PermanentChannelError("phone number cannot be parsed", reason="invalid_phone") from err
    if not phonenumbers.is_valid_number(parsed):
        raise PermanentChannelError("not an assigned, valid phone number", reason="invalid_phone")
    region = phonenumbers.region_code_for_number(parsed)
    if region == NON_GEOGRAPHIC:
        raise PermanentChannelError("a non-geographic (satellite or global service) number",
                                    reason="non_geographic_number")
    if region not in served:
        raise PermanentChannelError(f"a number in a country not served ({region})", reason="country_not_served")
    kind = phonenumbers.number_type(parsed)
    if kind not in sms_types:
        reason = type_reasons.get(kind, "unknown_number_type")
        raise PermanentChannelError(f"texts are not sent to this kind of number ({reason})", reason=reason)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
