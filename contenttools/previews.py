"""`make previews`: one HTML page showing every template in every locale and channel, without deploying.

Per template and locale: the SMS as a phone shows it for each country that receives that locale (with its segment
count, encoding and registered template id), the email rendered by headless Chromium (a PNG, and the HTML beside
it), the push notification and the in-app card. Written to build/previews/ (index.html, emails/).

    python -m contenttools.previews                         # everything
    python -m contenttools.previews --only loan.approved --locale zh-CN
    python -m contenttools.previews --docs docs             # also the two README images

Chromium is Debian's (/usr/bin/chromium, or CHROMIUM_PATH), driven through Playwright's Python package; no browser
is downloaded.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined, select_autoescape

from loan_notify import carriers
from loan_notify.templates import RenderedMessage, SmsMessage, render, template_id
from loan_notify.vocabulary import LoanStatus, Locale

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "previews"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
EMAIL_WIDTH = 640
PREFERENCES_URL = "https://app.loan-platform.example/preferences?notice=L-2026-000123-preview"
UNSUBSCRIBE_URL = "https://api.loan-platform.example/unsubscribe?t=preview"  # a real one carries a signed token

# Sample values per locale: what a typical notice carries (the check uses the longest ones instead).
SAMPLES: dict[Locale, dict[str, Any]] = {
    Locale.EN_US: {"name": "Ada Lovelace", "loan_id": "L-2026-000123", "amount": Decimal("12000"),
                   "currency": "USD", "reason": "Reviewed by the Seattle branch."},
    Locale.ZH_CN: {"name": "王伟", "loan_id": "L-2026-000123", "amount": Decimal("120000"), "currency": "CNY",
                   "reason": "由上海分行审核。"},
}
# A sample mobile number per country, so each SMS is rendered exactly as it is sent there.
SAMPLE_PHONES = {"CN": "+8613800138000", "US": "+12065550123", "CA": "+16135550123", "IN": "+919876543210"}


@dataclass(frozen=True)
class Card:
    template: str
    status: LoanStatus
    locale: Locale
    message: RenderedMessage
    sms: list[tuple[str, SmsMessage]]
    email_png: str
    email_html: str


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>loan-notify message previews</title>
<style>
body{font-family:Arial,'WenQuanYi Micro Hei','Noto Sans CJK SC',sans-serif;background:#eef0f3;margin:0;padding:24px;
color:#1f2937}
h1{font-size:22px;margin:0 0 4px} .lead{color:#6b7280;margin:0 0 24px;font-size:14px}
section{background:#fff;border-radius:10px;padding:18px 20px;margin:0 0 22px;box-shadow:0 1px 2px #0001}
h2{font-size:17px;margin:0 0 12px} h2 small{font-weight:normal;color:#6b7280}
.row{display:flex;gap:20px;align-items:flex-start;flex-wrap:wrap}
.col{display:flex;flex-direction:column;gap:12px}
.label{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:#6b7280;margin:0 0 4px}
.phone{width:260px;background:#111827;border-radius:26px;padding:14px 10px 16px}
.phone .bar{color:#9ca3af;font-size:11px;text-align:center;margin:0 0 8px}
.bubble{background:#e5e7eb;color:#111;border-radius:16px;padding:9px 12px;font-size:13.5px;line-height:19px;
white-space:pre-wrap;word-break:break-word}
.meta{color:#d1d5db;font-size:11px;margin:6px 4px 0} .meta b{color:#fff}
.push,.inapp{width:300px;border-radius:14px;padding:10px 12px;font-size:13px;line-height:18px}
.push{background:#f3f4f6cc;border:1px solid #d1d5db} .push b,.inapp b{display:block;margin-bottom:2px}
.inapp{background:#fff;border:1px solid #e5e7eb;white-space:pre-wrap}
.email img{width:480px;border:1px solid #e5e7eb;border-radius:6px;display:block}
.headers{font:12px/17px monospace;color:#374151;margin:6px 0 0;max-width:480px;word-break:break-all}
</style></head><body>
<h1>Message previews</h1>
<p class="lead">Every template in every locale and channel, rendered with sample values: the SMS per destination
country as the carriers' rules shape it, the email as Chromium renders it, the push notification and the in-app
card.</p>
{% for card in cards %}
<section id="{{ card.template }}-{{ card.locale.value }}">
<h2>{{ card.template }} <small>v{{ card.message.template_version }} &middot; {{ card.locale.value }}
{% if card.message.critical %}&middot; critical{% endif %}</small></h2>
<div class="row">
<div class="col">{% for country, sms in card.sms %}
<div class="phone"><p class="bar">SMS to {{ country }}</p><div class="bubble">{{ sms.text }}</div>
<p class="meta"><b>{{ sms.segments }} segment{{ "s" if sms.segments != 1 }}</b> &middot; {{ sms.encoding.value }}
&middot; {{ sms.units }} units{% if sms.template_id %}<br>template {{ sms.template_id }}{% endif %}
{% if sms.entity_id %} &middot; entity {{ sms.entity_id }}{% endif %}</p></div>{% endfor %}
</div>
<div class="col email"><p class="label">Email</p>
<img src="{{ card.email_png }}" alt="{{ card.message.subject }}">
<p class="headers">Subject: {{ card.message.subject }}<br>Preheader: {{ card.message.preheader }}<br>
{% if card.message.unsubscribe_url %}List-Unsubscribe: &lt;{{ card.message.unsubscribe_url }}&gt;<br>
List-Unsubscribe-Post: List-Unsubscribe=One-Click{% else %}No List-Unsubscribe (critical notice){% endif %}<br>
<a href="{{ card.email_html }}">HTML</a></p></div>
<div class="col"><div><p class="label">Push</p><div class="push"><b>{{ card.message.subject }}</b>
{{ card.message.push_text }}</div></div>
<div><p class="label">In-app</p><div class="inapp"><b>{{ card.message.subject }}</b>{{ card.message.text }}</div>
</div></div>
</div></section>
{% endfor %}
</body></html>
"""
_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True), undefined=StrictUndefined)


def _countries_for(locale: Locale) -> list[str]:
    table = carriers.rules()
    return [region for region, rules in table.countries.items() if locale in rules.locales and region in SAMPLE_PHONES]


def cards(only: Iterable[str] | None = None, locales: Iterable[Locale] | None = None) -> list[Card]:
    wanted, locale_list = set(only or []), list(locales or Locale)
    found: list[Card] = []
    for status in LoanStatus:
        tid = template_id(status)
        if wanted and tid not in wanted:
            continue
        for locale in locale_list:
            sample = SAMPLES[locale]
            message = render(status, locale, preferences_url=PREFERENCES_URL, unsubscribe_url=UNSUBSCRIBE_URL,
                             **sample)
            sms = [(country, render(status, locale, phone=SAMPLE_PHONES[country], **sample).sms)
                   for country in _countries_for(locale)]
            stem = f"emails/{tid}.{locale.value}"
            found.append(Card(tid, status, locale, message, [(c, s) for c, s in sms if s is not None],
                              f"{stem}.png", f"{stem}.html"))
    return found


def _browser(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def _own_thread(work: Any) -> None:
    """Playwright's sync API refuses to start in a thread that runs an asyncio loop (a test session driving the
    review console in the same process does): it gets a thread of its own, and its errors are raised here."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as err:  # noqa: BLE001 - handed to the caller below
            errors.append(err)

    thread = threading.Thread(target=run, name="previews", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def build(out: Path = OUT, *, only: Iterable[str] | None = None, locales: Iterable[Locale] | None = None,
          docs: Path | None = None) -> Path:
    """Write the gallery (index.html, emails/*.html and *.png) to `out`; returns the index page."""
    from playwright.sync_api import sync_playwright

    selected = cards(only, locales)
    if not selected:
        raise SystemExit("no template matches")
    (out / "emails").mkdir(parents=True, exist_ok=True)
    index = out / "index.html"
    index.write_text(_env.from_string(_PAGE).render(cards=selected), "utf-8")
    def shoot() -> None:
        with sync_playwright() as playwright:
            browser = _browser(playwright)
            try:
                page = browser.new_page(viewport={"width": EMAIL_WIDTH, "height": 400})
                for card in selected:
                    (out / card.email_html).write_text(card.message.html, "utf-8")
                    page.set_content(card.message.html, wait_until="load")
                    page.screenshot(path=str(out / card.email_png), full_page=True)
                if docs is not None:
                    _docs_images(browser, index, selected, docs)
            finally:
                browser.close()

    _own_thread(shoot)
    return index


def _docs_images(browser: Any, index: Path, selected: list[Card], docs: Path) -> None:
    """The README's two images: one gallery section (SMS, email, push, in-app) and one email on its own."""
    docs.mkdir(parents=True, exist_ok=True)
    first = next((c for c in selected if (c.template, c.locale) == ("loan.approved", Locale.ZH_CN)), selected[0])
    page = browser.new_page(viewport={"width": 1240, "height": 900}, device_scale_factor=1)
    page.goto(index.as_uri(), wait_until="load")
    page.locator(f"section[id='{first.template}-{first.locale.value}']").screenshot(
        path=str(docs / "preview-gallery.png"))
    email = next((c for c in selected if (c.template, c.locale) == ("loan.disbursed", Locale.EN_US)),
                 next((c for c in selected if not c.message.critical), first))
    page.set_viewport_size({"width": EMAIL_WIDTH, "height": 400})
    page.set_content(email.message.html, wait_until="load")
    page.screenshot(path=str(docs / "preview-email.png"), full_page=True)
    page.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contenttools.previews", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", action="append", help="a template id (repeatable), e.g. loan.approved")
    parser.add_argument("--locale", action="append", type=Locale, help="a locale (repeatable)")
    parser.add_argument("--docs", type=Path, help="also write the README images into this folder")
    args = parser.parse_args(argv)
    if args.docs and (args.only or args.locale):
        parser.error("--docs writes the README's images, which are chosen from every template and locale: "
                     "drop --only and --locale to use it")
    index = build(args.out, only=args.only, locales=args.locale, docs=args.docs)
    print(f"previews: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
