"""RFC 8058 one-click unsubscribe over HTTP: the link in a non-critical email's List-Unsubscribe, served by the
stack's own borrower API without a login."""

import json
import urllib.error
import urllib.request
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.flow.conftest import unique

pytestmark = pytest.mark.flow


def http(url, method, body=None, content_type="application/x-www-form-urlencoded"):
    request = urllib.request.Request(url, method=method, data=body.encode() if body is not None else None)
    if body is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode()


def test_one_click_in_a_non_critical_email_opts_out_and_critical_notices_still_go(cloud, platform):
    # GIVEN a borrower reachable by email, sent a non-critical notice (paid out)
    borrower = platform.borrower(phone=None)
    first = unique("L")
    platform.status(first, borrower["borrower_id"], "DISBURSED", 1, amount=Decimal("5000"), currency="USD")
    cloud.wait_idle()
    (email,) = platform.emails_to(borrower["email"])
    # THEN its List-Unsubscribe points at the stack's own route, with one-click
    link = email["headers"]["List-Unsubscribe"].strip("<>")
    assert link.startswith(f"{cloud.api.url}/unsubscribe?t=")
    assert email["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = parse_qs(urlsplit(link).query)["t"][0]

    def opted_out():
        item = platform.borrowers.get_item(Key={"borrower_id": borrower["borrower_id"]}, ConsistentRead=True)
        return item["Item"].get("opt_out_non_critical")

    # WHEN a link scanner fetches it: a page that asks, no script, and nothing changes
    status, content_type, page = http(link, "GET")
    assert status == 200 and content_type.startswith("text/html") and "<form method=\"post\"" in page
    assert "<script" not in page and not opted_out()
    # WHEN the token is tampered with, or the one-click body is missing: refused in the API's error shape
    forged = link.replace(token, token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"))
    for url, body in ((forged, "List-Unsubscribe=One-Click"), (link, "List-Unsubscribe=Maybe")):
        status, content_type, answer = http(url, "POST", body)
        assert 400 <= status < 500 and content_type.startswith("application/json"), (status, answer)
        assert json.loads(answer)["error"]["code"]
    assert http(forged, "GET")[0] == 400
    assert not opted_out()
    # WHEN the mailbox provider POSTs the one-click body
    status, _, answer = http(link, "POST", "List-Unsubscribe=One-Click")
    # THEN the borrower is opted out of non-critical notices
    assert status == 200 and json.loads(answer)["opt_out_non_critical"] is True and opted_out() is True
    # AND a repeat (a provider retrying, a person pressing the page's button) is harmless
    assert http(link, "POST", "List-Unsubscribe=One-Click")[0] == 200 and opted_out() is True
    # AND their next non-critical notice is not sent, while a critical one still is
    later, overdue = unique("L"), unique("L")
    platform.status(later, borrower["borrower_id"], "DISBURSED", 1, amount=Decimal("100"), currency="USD")
    platform.status(overdue, borrower["borrower_id"], "OVERDUE", 1, amount=Decimal("250"), currency="USD")
    cloud.wait_idle()
    (skipped,) = platform.notices(later)
    assert skipped["state"] == "OPTED_OUT" and not skipped.get("attempts")
    sent = platform.emails_to(borrower["email"])
    assert len(sent) == 2 and "List-Unsubscribe" not in sent[-1]["headers"]
    (critical,) = platform.notices(overdue)
    assert critical["attempts"][0]["channel"] == "EMAIL"
