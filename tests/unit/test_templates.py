from decimal import Decimal
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
import yaml

from loan_notify import carriers, template_check, templates
from loan_notify.models import AMOUNT_MAX, LOAN_ID_MAX_CHARS
from loan_notify.templates import DEFAULT_SMS_SEGMENT_BUDGET, mime, missing_templates, render
from loan_notify.vocabulary import LoanStatus, Locale

ROOT = Path(__file__).resolve().parents[2]
LONG_ID = "L-" + "7" * (LOAN_ID_MAX_CHARS - 2)


def test_every_status_has_a_template_in_every_locale():
    assert missing_templates() == []


@pytest.mark.parametrize("status", list(LoanStatus))
@pytest.mark.parametrize("locale", list(Locale))
def test_every_template_renders_every_channel(status, locale):
    message = render(status, locale, name="Ada", loan_id="L-9", amount=Decimal("12000"), currency="USD",
                     reason="income not verified", phone="+8613800138000")
    assert "L-9" in message.text and "L-9" in message.sms.text and "L-9" in message.push_text
    assert message.subject and message.preheader and message.template_version >= 2


def test_html_part_is_escaped_but_text_parts_are_not():
    message = render(LoanStatus.APPROVED, Locale.EN_US, name="<b>Tom & Jerry</b>", loan_id="L-1",
                     phone="+14155550123")
    assert "<b>Tom & Jerry</b>" in message.text and "<b>Tom & Jerry</b>" in message.sms.text
    assert "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;" in message.html and "<b>Tom" not in message.html


def test_content_hash_tracks_exactly_what_was_sent():
    a = render(LoanStatus.APPROVED, Locale.EN_US, name="Ada", loan_id="L-1", amount=Decimal("100"), currency="USD")
    b = render(LoanStatus.APPROVED, Locale.EN_US, name="Ada", loan_id="L-1", amount=Decimal("100"), currency="USD")
    c = render(LoanStatus.APPROVED, Locale.EN_US, name="Ada", loan_id="L-1", amount=Decimal("101"), currency="USD")
    d = render(LoanStatus.APPROVED, Locale.EN_US, name="Ada", loan_id="L-1", amount=Decimal("100"), currency="USD",
               phone="+8613800138000")
    assert a.content_hash == b.content_hash != c.content_hash != d.content_hash  # the SMS text counts too
    assert "100.00 USD" in a.text


def test_chinese_locale_is_used():
    message = render(LoanStatus.REJECTED, Locale.ZH_CN, name="王伟", loan_id="L-1", phone="+8613800138000")
    assert "未获批准" in message.text and message.template_id == "loan.rejected"
    assert message.sms.text.startswith("【信贷通知】王伟您好")


def test_the_status_reason_goes_to_email_and_in_app_never_to_sms_or_push():
    message = render(LoanStatus.REJECTED, Locale.ZH_CN, name="王伟", loan_id="L-1", reason="收入证明不足",
                     phone="+8613800138000")
    assert "收入证明不足" in message.text and "收入证明不足" in message.html  # email parts, and the in-app text
    assert "收入证明不足" not in message.sms.text and "收入证明不足" not in message.push_text


def test_an_over_long_name_gives_way_never_the_loan_id_or_the_amount():
    # GIVEN an en-US borrower with a long name and a +86 number (the signature makes it UCS-2: 134 units in 2 parts)
    name = "Bartholomew Fitzgerald-Montgomery Alexander Chesterfield-Whitaker"
    message = render(LoanStatus.APPROVED, Locale.EN_US, name=name, loan_id=LONG_ID, amount=AMOUNT_MAX,
                     currency="CNY", phone="+8613800138000")
    # THEN the first name is kept, the loan id and the amount whole, within the default budget
    sms = message.sms
    assert sms.segments <= DEFAULT_SMS_SEGMENT_BUDGET and sms.name_shortened
    assert "Hi Bartholomew, " in sms.text and LONG_ID in sms.text and "999,999,999,999.99 CNY" in sms.text
    assert name in message.text  # the email keeps the whole name
    # AND a one-word name is cut with an ellipsis that keeps the encoding (GSM-7 "...", UCS-2 "…")
    one_word = render(LoanStatus.SETTLED, Locale.EN_US, name="Wolfeschlegelsteinhausenbergerdorff" * 2,
                      loan_id=LONG_ID, amount=AMOUNT_MAX, currency="USD", phone="+14155550123", sms_segments=1).sms
    assert one_word.encoding.value == "GSM-7" and "Hi Wolfe" in one_word.text and "..., loan" in one_word.text
    assert one_word.segments == 1 and one_word.units > 150  # the longest cut that fits


def test_the_segment_budget_is_a_parameter_of_rendering():
    kwargs = {"name": "Ada Lovelace", "loan_id": LONG_ID, "amount": AMOUNT_MAX, "currency": "USD",
              "phone": "+8613800138000"}
    two = render(LoanStatus.SETTLED, Locale.EN_US, sms_segments=2, **kwargs).sms
    three = render(LoanStatus.SETTLED, Locale.EN_US, sms_segments=3, **kwargs).sms
    assert "Ada Lovelace" in three.text and not three.name_shortened
    assert two.segments <= 2 and three.segments <= 3


def test_the_stack_parameter_defaults_to_the_budget_the_templates_are_checked_against():
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=yaml.BaseLoader)  # !Ref tags as plain text
    assert int(template["Parameters"]["SmsSegmentBudget"]["Default"]) == DEFAULT_SMS_SEGMENT_BUDGET


def _parsed(raw: bytes):
    parsed = message_from_bytes(raw, policy=default_policy)
    return parsed, {p.get_content_type(): p.get_content() for p in parsed.walk() if not p.is_multipart()}


def test_non_critical_email_has_one_click_unsubscribe_and_the_preferences_in_its_footer():
    preferences = "https://app.loan-platform.example/preferences?notice=n-1"
    url = "https://api.loan-platform.example/unsubscribe?t=signed"
    message = render(LoanStatus.DISBURSED, Locale.EN_US, name="Ada", loan_id="L-1", preferences_url=preferences,
                     unsubscribe_url=url)
    raw = mime(message, sender="notices@example.com", recipient="ada@example.com")
    parsed, parts = _parsed(raw)
    assert parsed["List-Unsubscribe"] == f"<{url}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f'href="{preferences}"' in parts["text/html"] and url not in parts["text/html"]
    assert parsed.get_content_type() == "multipart/alternative" and set(parts) == {"text/plain", "text/html"}
    html = parts["text/html"]
    assert html.index(message.preheader) < html.index(message.subject + "</td>")  # the preview line comes first
    assert raw == mime(message, sender="notices@example.com", recipient="ada@example.com")  # deterministic bytes


def test_critical_email_never_has_list_unsubscribe():
    message = render(LoanStatus.OVERDUE, Locale.ZH_CN, name="王伟", loan_id="L-1",
                     preferences_url="https://app.loan-platform.example/preferences",
                     unsubscribe_url="https://api.loan-platform.example/unsubscribe?t=signed")
    parsed, parts = _parsed(mime(message, sender="notices@example.com", recipient="w@example.com"))
    assert "List-Unsubscribe" not in parsed and "List-Unsubscribe-Post" not in parsed
    assert parsed["Subject"] == "您的还款已逾期" and "您的贷款 L-1 还款已逾期" in parts["text/plain"]
    assert "管理通知偏好" in parts["text/html"]  # the preferences stay one click away in the footer


def test_make_templates_passes_for_the_shipped_templates(capsys):
    assert template_check.main([]) == 0
    assert "templates ok: 10 statuses x 2 locales (20)" in capsys.readouterr().out


def test_a_tighter_budget_fails_naming_template_locale_channel_and_rule(capsys):
    assert template_check.main(["--segments", "1"]) == 1
    assert "FAIL loan.overdue zh-CN SMS to CN: segments: 2 > 1 (UCS-2, " in capsys.readouterr().out


def test_a_template_without_a_registered_id_for_a_served_country_fails(monkeypatch):
    table = carriers.rules()
    cn = table.countries["CN"]
    ids = {tid: dict(by_locale) for tid, by_locale in cn.template_ids.items()}
    del ids["loan.approved"]["en-US"]
    patched = table.model_copy(update={"countries": {**table.countries,
                                                     "CN": cn.model_copy(update={"template_ids": ids})}})
    monkeypatch.setattr(carriers, "rules", lambda: patched)
    failures = [str(f) for f in template_check._check_sms(LoanStatus.APPROVED, Locale.EN_US, budget=2)]
    assert "FAIL loan.approved en-US SMS to CN: registered template id: none for loan.approved en-US (longest " \
           "latin name)" in failures


def test_changing_a_text_without_a_new_version_fails(monkeypatch):
    shipped = templates.catalog()
    approved = shipped["loan.approved"]
    texts = dict(approved.locales)
    texts[Locale.EN_US] = texts[Locale.EN_US].model_copy(update={"sms": "Hi {{ name }}, loan {{ loan_id }} is OK."})
    monkeypatch.setattr(template_check, "catalog",
                        lambda: {**shipped, "loan.approved": approved.model_copy(update={"locales": texts})})
    failures = [str(f) for f in template_check._check_versions(template_check.read_lock())]
    assert len(failures) == 1 and failures[0].startswith(
        "FAIL loan.approved * version: text changed without a new version: v2 was recorded as")


def test_a_new_version_is_recorded_once_and_a_recorded_one_never_rewritten(monkeypatch, tmp_path):
    lock = tmp_path / "templates.lock.json"
    lock.write_text('{"loan.approved": {"2": "recorded-long-ago"}}')
    monkeypatch.setattr(template_check, "LOCK_FILE", lock)
    added = template_check.record()
    assert "loan.approved v2" not in added and "loan.overdue v2" in added
    assert template_check.read_lock()["loan.approved"] == {"2": "recorded-long-ago"}
    assert template_check.record() == []
    failures = [str(f) for f in template_check._check_versions(template_check.read_lock())]
    assert [f.split(":")[0] for f in failures] == ["FAIL loan.approved * version"]


def test_the_report_shows_the_worst_case_per_template_locale_and_country():
    lines = template_check.report()
    (approved_cn,) = [line.split() for line in lines if line.startswith("approved ") and " zh-CN  CN " in line]
    assert approved_cn[3:6] == ["UCS-2", "134", "2"] and approved_cn[6].endswith("/64")
    assert len(lines) == 1 + len(LoanStatus) * sum(
        len(rules.locales) for _, rules in carriers.rules().served())
