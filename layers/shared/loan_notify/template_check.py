"""`make templates`: every template, in every locale and channel, checked against what carriers and mailbox
providers require, before anything is deployed. Fails naming the template, the locale, the channel and the rule.

    python -m loan_notify.template_check               # check (exit 1 on any failure)
    python -m loan_notify.template_check --segments 1  # against another SmsSegmentBudget
    python -m loan_notify.template_check --record      # record the hash of a new template version in the lock file
    python -m loan_notify.template_check --report      # the worst-case SMS size per template, locale and country

Rules:
- catalog: a template for every status in every locale; only the contract's variables; no status_reason in SMS;
- SMS, for every country of the carrier table and every locale it serves, rendered with the longest values the data
  contract allows (a Latin and a CJK name, the loan id, a 12-digit amount, a currency): the carrier rules
  (signature, links, registered template id, entity id, opt-out wording), the segment budget, the loan id and the
  amount whole, at least NAME_MIN_SHOWN characters of a name in the locale's own alphabet;
- email: text and HTML parts, values escaped in HTML, a preheader, List-Unsubscribe with one-click on non-critical
  notices only (never on critical ones), under 100 KB; the status reason shown in email and in-app, not in SMS or
  push;
- versions: each template version's texts hash to what the lock file recorded for that version.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import phonenumbers

from loan_notify import carriers
from loan_notify.models import AMOUNT_MAX, LOAN_ID_MAX_CHARS, NAME_MAX_CHARS
from loan_notify.templates import (
    DEFAULT_SMS_SEGMENT_BUDGET,
    EMAIL_MAX_BYTES,
    LAYOUT_ID,
    LAYOUT_VERSION,
    LOCK_FILE,
    NAME_MIN_SHOWN,
    SMS_FORBIDDEN,
    VARIABLES,
    catalog,
    layout_fingerprint,
    mime,
    missing_templates,
    render,
    variables_of,
)
from loan_notify.unsubscribe import UnsubscribeLinks
from loan_notify.vocabulary import LoanStatus, Locale

LONGEST_LOAN_ID = ("L-2026-" + "7" * LOAN_ID_MAX_CHARS)[:LOAN_ID_MAX_CHARS]
LONGEST_AMOUNT = AMOUNT_MAX
LONGEST_CURRENCY = "CNY"
# The longest names the contract allows, in each alphabet a name comes in: a Latin one keeps an en-US SMS in GSM-7
# (more characters per part, but the name is counted in septets), a CJK one makes any SMS UCS-2.
LONGEST_NAMES = {
    "latin": ("Maximiliana Alexandra Bartholomew-Fitzgerald Montgomery-Whitaker" * 2)[:NAME_MAX_CHARS],
    "cjk": ("欧阳慕容司马上官诸葛东方皇甫尉迟公孙长孙宇文轩辕令狐" * 4)[:NAME_MAX_CHARS],
}
# A name in the locale's own alphabet must keep NAME_MIN_SHOWN characters; one in another alphabet may give way to
# the greeting without a name (a CJK name would turn an English SMS to the US into UCS-2 and a third part).
NATIVE_ALPHABET = {Locale.EN_US: "latin", Locale.ZH_CN: "cjk"}
REASON_PROBE = "REASON-PROBE-7f3a"
HOSTILE_NAME = '<script>alert("x")</script> & "Tom"'
PREFERENCES_URL = "https://app.loan-platform.example/preferences?n=probe"
# As long as a real one-click link gets: the API's URL and a token for ids of 200 characters (the most the API takes)
UNSUBSCRIBE_URL = UnsubscribeLinks("https://abcdefghij.execute-api.ap-southeast-1.amazonaws.com", b"probe",
                                   clock=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))("B" * 200, "N" * 200)


@dataclass(frozen=True)
class Failure:
    template: str
    locale: str
    channel: str
    rule: str

    def __str__(self) -> str:
        return f"FAIL {self.template} {self.locale} {self.channel}: {self.rule}"


def _check_catalog() -> list[Failure]:
    failures = [Failure(f"loan.{m.split('/')[0].lower()}", m.split("/")[1], "all", "catalog: template missing")
                for m in missing_templates()]
    for tid, template in catalog().items():
        for locale in template.locales:
            for part in ("subject", "preheader", "sms", "body"):
                unknown = variables_of(tid, locale, part) - VARIABLES
                if unknown:
                    failures.append(Failure(tid, locale.value, part, f"variables: unknown {sorted(unknown)}"))
            leaked = variables_of(tid, locale, "sms") & SMS_FORBIDDEN
            if leaked:
                failures.append(Failure(tid, locale.value, "SMS", f"content: uses {sorted(leaked)} (email and in-app "
                                                                  "only)"))
    return failures


def _check_sms(status: LoanStatus, locale: Locale, budget: int) -> list[Failure]:
    failures: list[Failure] = []
    tid = f"loan.{status.value.lower()}"
    amount_text = f"{LONGEST_AMOUNT:,.2f}"
    for region, country in carriers.rules().served():
        if locale not in country.locales:
            continue
        channel = f"SMS to {region}"
        for alphabet, name in LONGEST_NAMES.items():
            message = render(status, locale, name=name, loan_id=LONGEST_LOAN_ID, amount=LONGEST_AMOUNT,
                             currency=LONGEST_CURRENCY, reason=REASON_PROBE, sms_segments=budget,
                             phone=_sample_phone(region), sms_country=region)
            sms = message.sms
            if sms is None or sms.country != region:
                failures.append(Failure(tid, locale.value, channel, f"routing: rendered for {sms and sms.country}"))
                continue
            for rule in carriers.violations(sms.text, template_id=tid, locale=locale, country=country,
                                            critical=message.critical, budget=budget):
                failures.append(Failure(tid, locale.value, channel, f"{rule} (longest {alphabet} name)"))
            if LONGEST_LOAN_ID not in sms.text:
                failures.append(Failure(tid, locale.value, channel, "loan id: not shown whole"))
            uses_amount = "amount" in variables_of(tid, locale, "sms")
            if uses_amount and (amount_text not in sms.text or LONGEST_CURRENCY not in sms.text):
                failures.append(Failure(tid, locale.value, channel, "amount: not shown whole"))
            if alphabet == NATIVE_ALPHABET[locale] and name[:NAME_MIN_SHOWN] not in sms.text:
                failures.append(Failure(tid, locale.value, channel,
                                        f"name: no room for {NAME_MIN_SHOWN} characters of a {alphabet} name"))
            if REASON_PROBE in sms.text or REASON_PROBE in message.push_text:
                failures.append(Failure(tid, locale.value, channel, "content: status_reason in SMS or push"))
    return failures


def _sample_phone(region: str) -> str | None:
    """A valid mobile number of the region (the renderer finds the country from it), None for the default rules."""
    if region == carriers.DEFAULT_COUNTRY:
        return None

    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


def _parts(raw: bytes) -> tuple[Any, dict[str, str]]:
    parsed = message_from_bytes(raw, policy=default_policy)
    bodies = {part.get_content_type(): part.get_content() for part in parsed.walk() if not part.is_multipart()}
    return parsed, bodies


def _check_email(status: LoanStatus, locale: Locale) -> list[Failure]:
    tid = f"loan.{status.value.lower()}"
    failures: list[Failure] = []

    def fail(rule: str) -> None:
        failures.append(Failure(tid, locale.value, "email", rule))

    longest = render(status, locale, name=LONGEST_NAMES["cjk"], loan_id=LONGEST_LOAN_ID, amount=LONGEST_AMOUNT,
                     currency=LONGEST_CURRENCY, reason="x" * 500, preferences_url=PREFERENCES_URL,
                     unsubscribe_url=UNSUBSCRIBE_URL)
    raw = mime(longest, sender="notices@loan-platform.example", recipient="borrower@example.com")
    if len(raw) >= EMAIL_MAX_BYTES:
        fail(f"size: {len(raw)} bytes >= {EMAIL_MAX_BYTES}")
    parsed, bodies = _parts(raw)
    if parsed.get_content_type() != "multipart/alternative" or set(bodies) != {"text/plain", "text/html"}:
        fail(f"parts: {parsed.get_content_type()} with {sorted(bodies)} (want text/plain and text/html)")
    if not longest.preheader or longest.preheader not in bodies.get("text/html", ""):
        fail("preheader: missing from the HTML")
    elif bodies["text/html"].index(longest.preheader) > bodies["text/html"].index("<table"):
        fail("preheader: must come before the visible content")
    unsubscribe, one_click = parsed.get("List-Unsubscribe"), parsed.get("List-Unsubscribe-Post")
    if longest.critical and (unsubscribe or one_click):
        fail("List-Unsubscribe: present on a critical notice")
    if not longest.critical and (unsubscribe != f"<{UNSUBSCRIBE_URL}>"
                                 or one_click != "List-Unsubscribe=One-Click"):
        fail(f"List-Unsubscribe: want <{UNSUBSCRIBE_URL}> with List-Unsubscribe-Post one-click, got "
             f"{unsubscribe!r} / {one_click!r}")
    hostile = render(status, locale, name=HOSTILE_NAME, loan_id="L-1", reason=REASON_PROBE)
    if "<script>" in hostile.html or "&lt;script&gt;" not in hostile.html:
        fail("escaping: a value reached the HTML unescaped")
    if HOSTILE_NAME not in hostile.text:
        fail("escaping: the text part must carry values as they are")
    if REASON_PROBE not in hostile.text or REASON_PROBE not in hostile.html:
        fail("content: status_reason missing from the email (and the in-app text)")
    return failures


def _check_versions(lock: dict[str, dict[str, str]]) -> list[Failure]:
    failures: list[Failure] = []
    current = {tid: (t.version, t.fingerprint()) for tid, t in catalog().items()}
    current[LAYOUT_ID] = (LAYOUT_VERSION, layout_fingerprint())
    for tid, (version, digest) in current.items():
        recorded = lock.get(tid, {}).get(str(version))
        if recorded is None:
            failures.append(Failure(tid, "*", "version", f"v{version} is not recorded in {LOCK_FILE.name}: run "
                                                         "python -m loan_notify.template_check --record"))
        elif recorded != digest:
            failures.append(Failure(tid, "*", "version", f"text changed without a new version: v{version} was "
                                                         f"recorded as {recorded[:12]}, is now {digest[:12]}; raise "
                                                         "its version, then --record"))
    return failures


def read_lock() -> dict[str, dict[str, str]]:
    return json.loads(LOCK_FILE.read_text("utf-8")) if LOCK_FILE.exists() else {}


def record() -> list[str]:
    """Record the hash of every template version not recorded yet; a recorded version is never rewritten."""
    lock = read_lock()
    current = {tid: (t.version, t.fingerprint()) for tid, t in catalog().items()}
    current[LAYOUT_ID] = (LAYOUT_VERSION, layout_fingerprint())
    added = []
    for tid, (version, digest) in sorted(current.items()):
        versions = lock.setdefault(tid, {})
        if str(version) not in versions:
            versions[str(version)] = digest
            added.append(f"{tid} v{version}")
    LOCK_FILE.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n", "utf-8")
    return added


def check(budget: int = DEFAULT_SMS_SEGMENT_BUDGET, lock: dict[str, dict[str, str]] | None = None
          ) -> tuple[list[Failure], int]:
    """Every rule for every status, locale and channel. Returns the failures and how many combinations ran."""
    failures = _check_catalog()
    combinations = 0
    if not failures:
        for status in LoanStatus:
            for locale in Locale:
                failures += _check_sms(status, locale, budget)
                failures += _check_email(status, locale)
                combinations += 1
    failures += _check_versions(read_lock() if lock is None else lock)
    return failures, combinations


def report(budget: int = DEFAULT_SMS_SEGMENT_BUDGET) -> list[str]:
    """The worst case per template, locale and country: the SMS with the longest values and a name in the locale's
    own alphabet (what `make templates ARGS=--report` prints)."""
    lines = ["template                   locale country encoding units segments name shown"]
    for status in LoanStatus:
        for locale in Locale:
            name = LONGEST_NAMES[NATIVE_ALPHABET[locale]]
            for region, country in carriers.rules().served():
                if locale not in country.locales:
                    continue
                sms = render(status, locale, name=name, loan_id=LONGEST_LOAN_ID, amount=LONGEST_AMOUNT,
                             currency=LONGEST_CURRENCY, sms_segments=budget, phone=_sample_phone(region),
                             sms_country=region).sms
                assert sms is not None
                shown = next((n for n in range(len(name), 0, -1) if name[:n] in sms.text), 0)
                lines.append(f"{status.value.lower():<26} {locale.value:<6} {region:<7} {sms.encoding.value:<8} "
                             f"{sms.units:>5} {sms.segments:>8} {shown:>2}/{len(name)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loan_notify.template_check", description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=DEFAULT_SMS_SEGMENT_BUDGET,
                        help="SMS segment budget (the stack's SmsSegmentBudget)")
    parser.add_argument("--record", action="store_true", help="record new template versions in the lock file")
    parser.add_argument("--report", action="store_true", help="print the worst-case SMS size per template, locale "
                                                              "and country")
    args = parser.parse_args(argv)
    if args.report:
        print("\n".join(report(args.segments)))
    if args.record:
        added = record()
        print("recorded: " + (", ".join(added) if added else "nothing new"))
    failures, combinations = check(args.segments)
    for failure in failures:
        print(failure)
    if failures:
        print(f"{len(failures)} failure(s)", file=sys.stderr)
        return 1
    countries = len(carriers.rules().served())
    print(f"templates ok: {len(LoanStatus)} statuses x {len(Locale)} locales ({combinations}), SMS for "
          f"{countries} carrier rule sets within {args.segments} segments, email, push and in-app")
    return 0


if __name__ == "__main__":
    sys.exit(main())
