"""Message content on the real template: SMS within the segment budget, email headers as mailbox providers want."""

from decimal import Decimal

import pytest

from loan_notify.models import AMOUNT_MAX, LOAN_ID_MAX_CHARS
from loan_notify.sms import Encoding, measure
from loan_notify.template_check import LONGEST_NAMES
from loan_notify.templates import DEFAULT_SMS_SEGMENT_BUDGET, NAME_MIN_SHOWN
from tests.flow.conftest import unique

pytestmark = pytest.mark.flow


def test_a_zh_cn_borrower_with_the_longest_name_gets_an_approval_sms_within_the_budget(cloud, platform):
    # GIVEN a zh-CN borrower with a +86 number and the longest name the data contract allows
    name = LONGEST_NAMES["cjk"]
    borrower = platform.borrower(locale="zh-CN", name=name)
    # AND a loan id and an amount as long as the contract allows
    loan_id = f"{unique('L')}-{'7' * LOAN_ID_MAX_CHARS}"[:LOAN_ID_MAX_CHARS]
    # WHEN the loan is approved
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1, amount=AMOUNT_MAX, currency="CNY")
    cloud.wait_idle()
    # THEN one SMS went out, in UCS-2 and within the stack's segment budget (the parameter's default)
    (sms,) = platform.sms_to(borrower["phone"])
    text = sms["text"]
    size = measure(text)
    assert size.encoding is Encoding.UCS2 and size.segments == DEFAULT_SMS_SEGMENT_BUDGET, size
    # AND it opens with the +86 signature and carries the loan id and the amount whole; only the name gave way
    assert text.startswith("【信贷通知】")
    assert loan_id in text and f"{AMOUNT_MAX:,.2f} CNY" in text
    assert name not in text and f"【信贷通知】{name[:NAME_MIN_SHOWN]}" in text and "…您好" in text
    # AND the ledger records its encoding, its segment count and the template id registered for China
    (notice,) = platform.notices(loan_id)
    (attempt,) = notice["attempts"]
    assert attempt["channel"] == "SMS" and attempt["result"] == "SENT"
    assert attempt["sms_encoding"] == "UCS-2" and int(attempt["sms_segments"]) == size.segments
    assert attempt["sms_country"] == "CN" and attempt["sms_template_id"] == "CN-LN-1004-ZH"


def test_email_is_mime_with_one_click_unsubscribe_on_non_critical_notices_only(cloud, platform):
    # GIVEN a borrower reachable by email only
    borrower = platform.borrower(phone=None)
    loan_id = unique("L")
    # WHEN a non-critical notice (paid out) and a critical one (overdue) are sent
    platform.status(loan_id, borrower["borrower_id"], "DISBURSED", 1, amount=Decimal("5000"), currency="USD",
                    status_reason="paid to the account ending 1234")
    cloud.wait_idle()
    platform.status(loan_id, borrower["borrower_id"], "OVERDUE", 2, amount=Decimal("250"), currency="USD")
    cloud.wait_idle()
    paid_out, overdue = sorted(platform.emails_to(borrower["email"]), key=lambda m: m["subject"] != "Your loan "
                                                                                                 "has been paid out")
    # THEN both have a text and an HTML part; the reason is in the email
    assert "5,000.00 USD" in paid_out["text"] and "paid to the account ending 1234" in paid_out["body"]
    # AND the non-critical one has RFC 8058 one-click unsubscribe at the borrower API, and in its footer the
    # borrower's preferences for that notice
    (disbursed,) = [n for n in platform.notices(loan_id) if n["status"] == "DISBURSED"]
    assert paid_out["headers"]["List-Unsubscribe"].startswith(f"<{cloud.api.url}/unsubscribe?t=")
    assert paid_out["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    preferences = cloud.parameters.get("PreferencesUrl", "https://app.loan-platform.example/preferences")
    assert f'{preferences}?notice={disbursed["notification_id"]}' in paid_out["body"]
    # AND the critical one has neither header: an overdue notice reaches the borrower whatever they unsubscribed
    assert "List-Unsubscribe" not in overdue["headers"] and "List-Unsubscribe-Post" not in overdue["headers"]
    assert len(paid_out["raw"].encode()) < 100 * 1024
