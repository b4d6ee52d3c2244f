from decimal import Decimal

import pytest

from loan_notify.templates import missing_templates, render
from loan_notify.vocabulary import LoanStatus, Locale


def test_every_status_has_a_template_in_every_locale():
    assert missing_templates() == []


@pytest.mark.parametrize("status", list(LoanStatus))
@pytest.mark.parametrize("locale", list(Locale))
def test_every_template_renders(status, locale):
    message = render(status, locale, name="Ada", loan_id="L-9", amount=Decimal("12000"), currency="USD",
                     reason="income not verified")
    assert "L-9" in message.text and message.subject
    assert len(message.text.encode()) < 1600  # SNS SMS limit


def test_html_part_is_escaped_but_sms_text_is_not():
    message = render(LoanStatus.APPROVED, Locale.EN_US, name="<b>Tom & Jerry</b>", loan_id="L-1")
    assert "<b>Tom & Jerry</b>" in message.text
    assert "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;" in message.html


def test_content_hash_tracks_exactly_what_was_sent():
    a = render(LoanStatus.APPROVED, Locale.EN_US, name="Ada", loan_id="L-1", amount=Decimal("100"), currency="USD")
    b = render(LoanStatus.APPROVED, Locale.EN_US, name="Ada", loan_id="L-1", amount=Decimal("100"), currency="USD")
    c = render(LoanStatus.APPROVED, Locale.EN_US, name="Ada", loan_id="L-1", amount=Decimal("101"), currency="USD")
    assert a.content_hash == b.content_hash != c.content_hash
    assert "100.00 USD" in a.text


def test_chinese_locale_is_used():
    message = render(LoanStatus.REJECTED, Locale.ZH_CN, name="王伟", loan_id="L-1")
    assert "未获批准" in message.text and message.template_id == "loan.rejected"
