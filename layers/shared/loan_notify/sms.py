"""SMS encoding and segment arithmetic (3GPP TS 23.038 / 23.040), as carriers count and bill it.

A message that uses only the GSM 7-bit default alphabet (plus its extension table, where each character takes an
escape and so two septets) is sent as GSM-7: 160 septets in one part, 153 per part once it is split (the user data
header takes the rest). Anything else is sent as UCS-2 (UTF-16 on every modern handset): 70 code units in one part,
67 per part, and a character outside the Basic Multilingual Plane (most emoji) is a surrogate pair, two code units.
A part boundary never splits an escape sequence or a surrogate pair: the split counts parts exactly, character by
character, instead of dividing a total.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# GSM 03.38 default alphabet (the basic character set, national language shift tables not used).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each is sent as ESC + character, two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True)
class SmsSize:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int

    @property
    def per_part(self) -> int:
        single, part = (GSM7_SINGLE, GSM7_PART) if self.encoding is Encoding.GSM7 else (UCS2_SINGLE, UCS2_PART)
        return single if self.segments <= 1 else part


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def encoding_of(text: str) -> Encoding:
    return Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2


def _costs(text: str, encoding: Encoding) -> list[int]:
    if encoding is Encoding.GSM7:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def _parts(costs: list[int], single: int, part: int) -> int:
    if sum(costs) <= single:
        return 1 if costs else 0
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part:  # this character (escape pair, surrogate pair) starts the next part whole
            parts, used = parts + 1, 0
        used += cost
    return parts


def measure(text: str) -> SmsSize:
    """Encoding, length in the encoding's units, and the number of parts a carrier sends (and bills)."""
    encoding = encoding_of(text)
    costs = _costs(text, encoding)
    single, part = (GSM7_SINGLE, GSM7_PART) if encoding is Encoding.GSM7 else (UCS2_SINGLE, UCS2_PART)
    return SmsSize(encoding, sum(costs), _parts(costs, single, part))


def fits(text: str, segments: int) -> bool:
    return measure(text).segments <= segments
