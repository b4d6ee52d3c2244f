"""Versioned message templates, one per borrower-visible status, in every supported locale.

The texts live in content/templates/<template id>.yaml (validated with pydantic on load), the email layout in
content/email.html.j2. Rendered with Jinja2: autoescape on for the HTML part, off for text parts (an SMS with
"&amp;" in it is a broken SMS), StrictUndefined everywhere so a missing variable fails loudly instead of sending a
blank.

Per channel:
- SMS: the template's `sms` text, shaped by the destination country's carrier rules (signature, opt-out wording),
  within a segment budget. Only the borrower's name is ever shortened to fit, never the loan id or the amount;
  the status reason never goes by SMS (nor by push: both show on a lock screen).
- email: subject, a preheader, the `body` (with the reason) as text and as HTML, and for non-critical notices a
  one-click `List-Unsubscribe` (RFC 8058) to the borrower API's unsubscribe route (loan_notify.unsubscribe); the
  footer links to the borrower's preferences. `mime()` builds the message.
- push: subject and the SMS text without carrier decoration; in-app: subject and the body.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loan_notify import carriers
from loan_notify.policy import POLICIES
from loan_notify.sms import Encoding, is_gsm7, measure
from loan_notify.vocabulary import LoanStatus, Locale

CONTENT = Path(__file__).parent / "content"
TEMPLATES_DIR = CONTENT / "templates"
LAYOUT_FILE = CONTENT / "email.html.j2"
LOCK_FILE = CONTENT / "templates.lock.json"
LAYOUT_ID, LAYOUT_VERSION = "email.layout", 1  # the layout and its chrome below are versioned like a template
DEFAULT_SMS_SEGMENT_BUDGET = 2  # the stack's SmsSegmentBudget parameter defaults to this (a unit test holds it)
EMAIL_MAX_BYTES = 100 * 1024  # Gmail clips a message over 102 KB: stay under 100 KB
NAME_MIN_SHOWN = 2  # the fewest characters of a name an SMS shows before it drops to the greeting without a name
VARIABLES = frozenset({"name", "loan_id", "amount", "currency", "reason"})
SMS_FORBIDDEN = frozenset({"reason"})  # status_reason goes to email and the in-app center, never to SMS or push

# Email chrome per locale (part of the layout's version).
_CHROME: dict[Locale, dict[str, str]] = {
    Locale.EN_US: {"brand": "Loan notices", "anonymous": "there",
                   "critical": "This notice concerns your loan and is sent whatever your notification settings.",
                   "optional": "You receive loan updates by email.", "preferences": "Manage notification preferences",
                   "unsubscribe": "Unsubscribe from updates"},
    Locale.ZH_CN: {"brand": "贷款通知", "anonymous": "客户",
                   "critical": "此通知与您的贷款直接相关，无论通知设置如何都会发送。",
                   "optional": "您正在通过邮件接收贷款进度通知。", "preferences": "管理通知偏好",
                   "unsubscribe": "退订进度通知"},
}


class LocaleTexts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str = Field(min_length=1, max_length=120)
    preheader: str = Field(min_length=1, max_length=140)
    sms: str = Field(min_length=1)
    body: str = Field(min_length=1)


class TemplateFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    locales: dict[Locale, LocaleTexts]

    def fingerprint(self) -> str:
        """sha256 of every text of the template (not its version): what the lock file records per version."""
        texts = {loc.value: t.model_dump() for loc, t in sorted(self.locales.items())}
        return hashlib.sha256(json.dumps(texts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


# SMS, push and plain-text bodies are not HTML: escaping them would put "&amp;" in a text message.
@functools.cache
def _text_env() -> Any:
    """Jinja2 for text parts, built (and Jinja2 imported) on the first render: a cold start that renders nothing
    (the router, the receipts) never pays for it."""
    from jinja2 import Environment, StrictUndefined

    return Environment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=False)  # noqa: S701


@functools.cache
def _html_env() -> Any:
    from jinja2 import Environment, StrictUndefined, select_autoescape

    return Environment(autoescape=select_autoescape(default=True, default_for_string=True), undefined=StrictUndefined)


def template_id(status: LoanStatus) -> str:
    return f"loan.{status.value.lower()}"


@functools.cache
def catalog() -> dict[str, TemplateFile]:
    """Every template file, by template id, validated."""
    import yaml  # on first use: importing this module reads no file

    return {path.name.removesuffix(".yaml"): TemplateFile.model_validate(yaml.safe_load(path.read_text("utf-8")))
            for path in sorted(TEMPLATES_DIR.glob("*.yaml"))}


def template_version(status: LoanStatus) -> int:
    return catalog()[template_id(status)].version


def layout_fingerprint() -> str:
    payload = LAYOUT_FILE.read_text("utf-8") + json.dumps({k.value: v for k, v in _CHROME.items()}, sort_keys=True,
                                                          ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


@functools.cache
def _compiled(tid: str, locale: Locale, part: str) -> Any:
    return _text_env().from_string(getattr(catalog()[tid].locales[locale], part))


@functools.cache
def _layout() -> Any:
    return _html_env().from_string(LAYOUT_FILE.read_text("utf-8"))


@functools.cache
def variables_of(tid: str, locale: Locale, part: str) -> frozenset[str]:
    """The variables a template part uses (for the check: no reason in SMS, nothing unknown anywhere)."""
    from jinja2 import meta

    return frozenset(meta.find_undeclared_variables(_text_env().parse(getattr(catalog()[tid].locales[locale], part))))


@dataclass(frozen=True)
class SmsMessage:
    """The SMS as the provider gets it: text shaped for the destination country, its size, and the registered ids
    the country's carriers need with it (`template_id`, `entity_id`: None where none is needed)."""

    text: str
    encoding: Encoding
    segments: int
    units: int
    country: str  # ISO region of the destination, or carriers.DEFAULT_COUNTRY
    template_id: str | None = None
    entity_id: str | None = None
    name_shortened: bool = False


@dataclass(frozen=True)
class RenderedMessage:
    template_id: str
    template_version: int
    locale: Locale
    subject: str
    text: str  # the email's plain-text part and the in-app text
    html: str
    preheader: str = ""
    push_text: str = ""
    critical: bool = False
    unsubscribe_url: str | None = None
    sms: SmsMessage | None = field(default=None)

    @property
    def content_hash(self) -> str:
        """sha256 of exactly what the borrower was sent; the evidence keeps the hash, not the text."""
        parts = (self.template_id, str(self.template_version), self.subject, self.text, self.html,
                 self.sms.text if self.sms else "")
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _amount(amount: Decimal | None) -> str:
    return f"{amount:,.2f}" if amount is not None else ""


def _shorten_name(name: str, build: Callable[[str], str], fits: Callable[[str], bool], anonymous: str,
                  ellipsis: str) -> tuple[str, bool]:
    """The SMS with the borrower's whole name if it fits; else gracefully shorter: the first word, then the longest
    cut (with an ellipsis) of at least NAME_MIN_SHOWN characters, then the locale's greeting without a name. The
    loan id and the amount are never touched. When nothing fits, the greeting without a name goes out."""
    if fits(text := build(name)):
        return text, False
    words = name.split()
    if len(words) > 1 and fits(text := build(words[0])):
        return text, True
    low, high, best = NAME_MIN_SHOWN, len(name) - 1, None  # the SMS only grows with the name: bisect the cut
    while low <= high:
        keep = (low + high) // 2
        if fits(text := build(name[:keep].rstrip() + ellipsis)):
            best, low = text, keep + 1
        else:
            high = keep - 1
    return (best if best is not None else build(anonymous)), True


def render_sms(tid: str, locale: Locale, context: dict[str, Any], *, phone: str | None, critical: bool,
               budget: int = DEFAULT_SMS_SEGMENT_BUDGET, country: str | None = None) -> SmsMessage:
    """The SMS for this destination (its country from `phone`, or `country` given): within `budget` segments by
    shortening the name alone. When even no name does not fit, the shortest form goes out (the check prevents it
    for every value the data contract allows)."""
    region = country if country is not None else carriers.region_of(phone)
    rules = carriers.rules()
    country_rules = rules.for_country(None if region == carriers.DEFAULT_COUNTRY else region)
    limit = min(budget, country_rules.max_segments or budget)
    template = _compiled(tid, locale, "sms")

    def build(name: str) -> str:
        return carriers.compose(template.render({**context, "name": name}), country_rules, locale, critical=critical)

    text, shortened = _shorten_name(context["name"], build, lambda t: measure(t).segments <= limit,
                                    _CHROME[locale]["anonymous"],
                                    # an ellipsis is not GSM-7: it would turn a GSM-7 message into UCS-2
                                    ellipsis="..." if is_gsm7(template.render(context)) else "…")
    size = measure(text)
    served = region if region in rules.countries else carriers.DEFAULT_COUNTRY
    return SmsMessage(text=text, encoding=size.encoding, segments=size.segments, units=size.units, country=served,
                      template_id=country_rules.registered_template(tid, locale),
                      entity_id=country_rules.entity_id, name_shortened=shortened)


def render(status: LoanStatus, locale: Locale, *, name: str, loan_id: str, amount: Decimal | None = None,
           currency: str | None = None, reason: str | None = None, phone: str | None = None,
           preferences_url: str | None = None, unsubscribe_url: str | None = None,
           sms_segments: int = DEFAULT_SMS_SEGMENT_BUDGET, sms_country: str | None = None) -> RenderedMessage:
    """Every channel's content for one notice. The SMS part is rendered when `phone` (or `sms_country`, an ISO
    region or carriers.DEFAULT_COUNTRY) is given: its country's carrier rules apply. `preferences_url` is the
    borrower's preferences page (the footer link); `unsubscribe_url` the one-click unsubscribe URL (RFC 8058: it
    accepts a POST without a login), the `List-Unsubscribe` of non-critical emails only."""
    tid = template_id(status)
    critical = POLICIES[status].critical
    chrome = _CHROME[locale]
    context: dict[str, Any] = {"name": name or chrome["anonymous"], "loan_id": loan_id, "amount": _amount(amount),
                               "currency": currency or "", "reason": reason or ""}
    subject = _compiled(tid, locale, "subject").render(context)
    preheader = _compiled(tid, locale, "preheader").render(context)
    body = _compiled(tid, locale, "body").render(context)
    push_text = _compiled(tid, locale, "sms").render(context)
    unsubscribe = unsubscribe_url if unsubscribe_url and not critical else None
    html = _layout().render(
        lang=locale.value, subject=subject, preheader=preheader,
        preheader_pad="\u034f\u00a0" * max(0, 90 - len(preheader)),  # keeps body text out of the inbox preview
        paragraphs=[p.replace("\n", " ") for p in body.split("\n\n") if p.strip()], brand=chrome["brand"],
        footer=chrome["critical" if critical else "optional"], preferences_url=preferences_url,
        preferences_label=chrome["preferences"] if critical else chrome["unsubscribe"])
    sms = (render_sms(tid, locale, context, phone=phone, critical=critical, budget=sms_segments, country=sms_country)
           if phone or sms_country else None)
    return RenderedMessage(template_id=tid, template_version=catalog()[tid].version, locale=locale, subject=subject,
                           text=body, html=html, preheader=preheader, push_text=push_text, critical=critical,
                           unsubscribe_url=unsubscribe, sms=sms)


def mime(message: RenderedMessage, *, sender: str, recipient: str) -> bytes:
    """The email as sent: multipart/alternative (text, then HTML), UTF-8, and on non-critical notices the RFC 8058
    one-click unsubscribe headers (a critical notice must reach the borrower whatever they unsubscribed from)."""
    email = EmailMessage(policy=SMTP)
    email["From"] = sender
    email["To"] = formataddr(("", recipient))
    email["Subject"] = message.subject
    if message.unsubscribe_url:
        email["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email.set_content(message.text, charset="utf-8", cte="quoted-printable")
    email.add_alternative(message.html, subtype="html", charset="utf-8", cte="quoted-printable")
    email.set_boundary(f"=_loan-notify_{message.content_hash[:32]}")  # the same message, the same bytes
    return email.as_bytes()


def missing_templates() -> list[str]:
    """Every borrower-visible status must have a template in every locale (checked by `make templates`)."""
    have = catalog()
    return [f"{s.value}/{loc.value}" for s in LoanStatus for loc in Locale
            if template_id(s) not in have or loc not in have[template_id(s)].locales]
