"""SMS encoding and segment arithmetic against known cases (3GPP TS 23.038 / 23.040)."""

import pytest

from loan_notify.sms import GSM7_BASIC, GSM7_EXTENSION, Encoding, encoding_of, measure


def test_the_gsm7_tables_have_their_standard_sizes():
    assert len(GSM7_BASIC) == 127  # 128 code points, one of them the escape to the extension table
    assert len(GSM7_EXTENSION) == 10 and not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize("length, segments", [(0, 0), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3),
                                              (460, 4)])
def test_gsm7_is_160_in_one_part_then_153_per_part(length, segments):
    size = measure("a" * length)
    assert size.encoding is Encoding.GSM7 and size.units == length and size.segments == segments


@pytest.mark.parametrize("length, segments", [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)])
def test_ucs2_is_70_in_one_part_then_67_per_part(length, segments):
    size = measure("贷" * length)
    assert size.encoding is Encoding.UCS2 and size.units == length and size.segments == segments


def test_one_character_outside_gsm7_makes_the_whole_message_ucs2():
    assert encoding_of("Hi Ada, your loan is approved.") is Encoding.GSM7
    assert encoding_of("Hi Zoë, your loan is approved.") is Encoding.UCS2  # ë is not in the GSM-7 table
    assert encoding_of("Hi Zoé, your loan is approved.") is Encoding.GSM7  # é is
    assert measure("a" * 159 + "…").segments == 3  # an ellipsis: 160 UCS-2 units


@pytest.mark.parametrize("text, units, segments", [
    ("€" * 80, 160, 1),  # extension characters count two septets each
    ("€" * 81, 162, 2),
    ("[" * 76 + "a" * 2, 154, 1),
    ("a" * 152 + "{" + "b" * 152, 306, 3),  # an escape pair never straddles parts: 152 | { + 151 | b
    ("a" * 153 + "~" + "b" * 151, 306, 2),  # here it starts the second part whole
])
def test_gsm7_extension_characters_count_double_and_are_never_split(text, units, segments):
    size = measure(text)
    assert size.encoding is Encoding.GSM7 and size.units == units and size.segments == segments


@pytest.mark.parametrize("text, units, segments", [
    ("😀" * 35, 70, 1),  # outside the BMP: a surrogate pair, two code units
    ("😀" * 36, 72, 2),
    ("贷" * 66 + "😀" + "贷" * 66, 134, 3),  # the pair does not fit in part one's last unit: it starts part two
    ("贷" * 65 + "😀" + "贷" * 67, 134, 2),
])
def test_emoji_count_two_ucs2_units_and_a_pair_is_never_split(text, units, segments):
    size = measure(text)
    assert size.encoding is Encoding.UCS2 and size.units == units and size.segments == segments
