"""Versioned message templates, one per borrower-visible status, in every supported locale.

Rendered with Jinja2 (autoescape on for the HTML part, StrictUndefined everywhere so a missing
variable fails loudly instead of sending a blank).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from loan_notify.vocabulary import LoanStatus, Locale

TEMPLATE_VERSION = 1

# status -> locale -> (subject, text). The text is the SMS and the plain-text email body.
_CATALOG: dict[LoanStatus, dict[Locale, tuple[str, str]]] = {
    LoanStatus.SUBMITTED: {
        Locale.EN_US: ("We received your loan application",
                       "Hi {{ name }}, we received your loan application {{ loan_id }}. We will let you know "
                       "as soon as it is reviewed."),
        Locale.ZH_CN: ("我们已收到您的贷款申请",
                       "{{ name }}您好，我们已收到您的贷款申请 {{ loan_id }}，审核完成后会第一时间通知您。"),
    },
    LoanStatus.PRELIMINARY_APPROVED: {
        Locale.EN_US: ("Your loan is preliminarily approved",
                       "Hi {{ name }}, your loan application {{ loan_id }} is preliminarily approved"
                       "{% if amount %} for {{ amount }} {{ currency }}{% endif %}. Final approval follows."),
        Locale.ZH_CN: ("您的贷款已初步批准",
                       "{{ name }}您好，您的贷款申请 {{ loan_id }} 已初步批准"
                       "{% if amount %}，金额 {{ amount }} {{ currency }}{% endif %}，最终结果将随后通知。"),
    },
    LoanStatus.DOCUMENTS_REQUIRED: {
        Locale.EN_US: ("Documents needed for your loan",
                       "Hi {{ name }}, we need more documents for loan {{ loan_id }}"
                       "{% if reason %}: {{ reason }}{% endif %}. Please upload them in the app."),
        Locale.ZH_CN: ("您的贷款需要补充材料",
                       "{{ name }}您好，您的贷款 {{ loan_id }} 需要补充材料{% if reason %}：{{ reason }}{% endif %}。"
                       "请在 App 中上传。"),
    },
    LoanStatus.APPROVED: {
        Locale.EN_US: ("Your loan is approved",
                       "Hi {{ name }}, good news: your loan {{ loan_id }} is approved"
                       "{% if amount %} for {{ amount }} {{ currency }}{% endif %}."),
        Locale.ZH_CN: ("您的贷款已批准",
                       "{{ name }}您好，您的贷款 {{ loan_id }} 已批准{% if amount %}，金额 {{ amount }} {{ currency }}"
                       "{% endif %}。"),
    },
    LoanStatus.REJECTED: {
        Locale.EN_US: ("Update on your loan application",
                       "Hi {{ name }}, we are sorry: your loan application {{ loan_id }} was not approved"
                       "{% if reason %} ({{ reason }}){% endif %}. You may ask us for the reasons within 60 days."),
        Locale.ZH_CN: ("您的贷款申请结果",
                       "{{ name }}您好，很抱歉，您的贷款申请 {{ loan_id }} 未获批准{% if reason %}（{{ reason }}）"
                       "{% endif %}。您可在 60 天内向我们询问具体原因。"),
    },
    LoanStatus.DISBURSED: {
        Locale.EN_US: ("Your loan has been paid out",
                       "Hi {{ name }}, loan {{ loan_id }}{% if amount %} of {{ amount }} {{ currency }}{% endif %} "
                       "has been paid out to your account."),
        Locale.ZH_CN: ("您的贷款已放款",
                       "{{ name }}您好，您的贷款 {{ loan_id }}{% if amount %}（{{ amount }} {{ currency }}）{% endif %}"
                       "已发放至您的账户。"),
    },
    LoanStatus.REPAYMENT_DUE: {
        Locale.EN_US: ("A repayment is due",
                       "Hi {{ name }}, a repayment on loan {{ loan_id }} is due"
                       "{% if amount %}: {{ amount }} {{ currency }}{% endif %}."),
        Locale.ZH_CN: ("您有一笔还款即将到期",
                       "{{ name }}您好，您的贷款 {{ loan_id }} 有一笔还款即将到期{% if amount %}，金额 {{ amount }} "
                       "{{ currency }}{% endif %}。"),
    },
    LoanStatus.OVERDUE: {
        Locale.EN_US: ("Your repayment is overdue",
                       "Hi {{ name }}, the repayment on loan {{ loan_id }} is overdue"
                       "{% if amount %} ({{ amount }} {{ currency }}){% endif %}. Please pay or contact us."),
        Locale.ZH_CN: ("您的还款已逾期",
                       "{{ name }}您好，您的贷款 {{ loan_id }} 还款已逾期{% if amount %}（{{ amount }} {{ currency }}）"
                       "{% endif %}，请尽快还款或联系我们。"),
    },
    LoanStatus.SETTLED: {
        Locale.EN_US: ("Your loan is settled", "Hi {{ name }}, loan {{ loan_id }} is fully repaid. Thank you."),
        Locale.ZH_CN: ("您的贷款已结清", "{{ name }}您好，您的贷款 {{ loan_id }} 已全部结清，感谢您的信任。"),
    },
    LoanStatus.WITHDRAWN: {
        Locale.EN_US: ("Your loan application was withdrawn",
                       "Hi {{ name }}, your loan application {{ loan_id }} was withdrawn"
                       "{% if reason %} ({{ reason }}){% endif %}."),
        Locale.ZH_CN: ("您的贷款申请已撤回",
                       "{{ name }}您好，您的贷款申请 {{ loan_id }} 已撤回{% if reason %}（{{ reason }}）{% endif %}。"),
    },
}

_HTML = "<html><body><p>{{ text }}</p></body></html>"


@functools.cache
def _environments() -> tuple[Any, Any]:
    """The Jinja2 environments, built (and Jinja2 imported) on the first render, not at import: a cold start that
    renders nothing (the router, the receipts) never pays for them."""
    from jinja2 import Environment, StrictUndefined, select_autoescape

    # SMS and plain-text bodies are not HTML: escaping them would put "&amp;" in a text message.
    text_env = Environment(autoescape=False, undefined=StrictUndefined)  # noqa: S701
    html_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True),
                           undefined=StrictUndefined)
    return text_env, html_env.from_string(_HTML)


@functools.cache
def _compiled(status: LoanStatus, locale: Locale) -> tuple[Any, Any]:
    """One status's subject and text templates, compiled on first use and kept."""
    subject, text = _CATALOG[status][locale]
    text_env, _html = _environments()
    return text_env.from_string(subject), text_env.from_string(text)


@dataclass(frozen=True)
class RenderedMessage:
    template_id: str
    template_version: int
    locale: Locale
    subject: str
    text: str
    html: str

    @property
    def content_hash(self) -> str:
        """sha256 of exactly what the borrower was sent; the evidence keeps the hash, not the text."""
        payload = "\x1f".join((self.template_id, str(self.template_version), self.subject, self.text, self.html))
        return hashlib.sha256(payload.encode()).hexdigest()


def template_id(status: LoanStatus) -> str:
    return f"loan.{status.value.lower()}"


def render(status: LoanStatus, locale: Locale, *, name: str, loan_id: str, amount: Decimal | None = None,
           currency: str | None = None, reason: str | None = None) -> RenderedMessage:
    subject_t, text_t = _compiled(status, locale)
    context: dict[str, Any] = {
        "name": name or ("客户" if locale is Locale.ZH_CN else "there"),
        "loan_id": loan_id,
        "amount": f"{amount:,.2f}" if amount is not None else "",
        "currency": currency or "",
        "reason": reason or "",
    }
    subject = subject_t.render(context)
    text = text_t.render(context)
    return RenderedMessage(
        template_id=template_id(status),
        template_version=TEMPLATE_VERSION,
        locale=locale,
        subject=subject,
        text=text,
        html=_environments()[1].render(text=text),
    )


def missing_templates() -> list[str]:
    """Every borrower-visible status must have a template in every locale (checked by a unit test)."""
    return [f"{s.value}/{loc.value}" for s in LoanStatus for loc in Locale if loc not in _CATALOG.get(s, {})]
