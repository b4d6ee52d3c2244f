"""One-click unsubscribe tokens: signed for one borrower and notice, expiring, refused when forged or malformed."""

from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from loan_notify.center import _page_secret
from loan_notify.contacts import VerificationError
from loan_notify.contacts import sign as sign_link
from loan_notify.errors import BorrowerNotFound
from loan_notify.models import Borrower
from loan_notify.unsubscribe import (
    TOKEN_TTL,
    UnsubscribeLinks,
    check,
    sign,
    unsubscribe,
    unsubscribe_key,
    verify,
)
from tests.unit.fakes import FakeBorrowers

SECRET = b"the-signing-secret-of-the-borrower-api"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
KEY = unsubscribe_key(SECRET)


class OptOuts(FakeBorrowers):
    """The borrowers, and every one-click opt-out written."""

    def __init__(self, *borrowers: Borrower) -> None:
        super().__init__(*borrowers)
        self.opted_out: list[str] = []

    def opt_out_non_critical(self, borrower_id: str) -> None:
        self.get(borrower_id)
        self.opted_out.append(borrower_id)


def _token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


def test_a_link_names_the_route_and_verifies_to_its_borrower_and_notice():
    url = UnsubscribeLinks("https://api.example.com/", SECRET, clock=lambda: NOW)("B-1", "L-1#v2")
    assert url.startswith("https://api.example.com/unsubscribe?t=")
    claims = verify(_token_of(url), key=KEY, clock=lambda: NOW)
    assert (claims.borrower_id, claims.notification_id) == ("B-1", "L-1#v2")
    assert claims.expires_at == NOW + TOKEN_TTL


def test_a_token_is_valid_until_it_expires():
    token = sign("B-1", "N-1", key=KEY, now=NOW)
    assert verify(token, key=KEY, clock=lambda: NOW + TOKEN_TTL - timedelta(seconds=1)).borrower_id == "B-1"
    with pytest.raises(VerificationError) as refused:
        verify(token, key=KEY, clock=lambda: NOW + TOKEN_TTL)
    assert refused.value.code == "expired"


@pytest.mark.parametrize("tamper", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # the signature changed
    lambda t: sign("B-2", "N-1", key=KEY, now=NOW).split(".")[0] + "." + t.split(".")[1],  # another borrower's body
    lambda t: t.split(".")[0],  # no signature
    lambda t: "not-a-token-at-all",
    lambda t: "é" * 20 + "." + "ü" * 20,  # not ASCII
    lambda t: t + ".extra",
])
def test_a_tampered_or_malformed_token_is_refused(tamper):
    token = sign("B-1", "N-1", key=KEY, now=NOW)
    with pytest.raises(VerificationError) as refused:
        verify(tamper(token), key=KEY, clock=lambda: NOW)
    assert refused.value.code == "invalid_link"


def test_tokens_of_other_purposes_or_keys_are_not_unsubscribe_tokens():
    claims = {"b": "B-1", "n": "N-1", "x": "2027-01-01T00:00:00.000Z"}
    for foreign in (sign_link(claims, SECRET), sign_link(claims, _page_secret(SECRET)),
                    sign("B-1", "N-1", key=unsubscribe_key(b"another-stack"), now=NOW)):
        with pytest.raises(VerificationError):
            verify(foreign, key=KEY, clock=lambda: NOW)
    # and an email confirmation link's claims, signed with the right key, are still the wrong shape
    with pytest.raises(VerificationError):
        verify(sign_link({"b": "B-1", "e": "a@example.com", "x": "2027-01-01T00:00:00.000Z"}, KEY), key=KEY,
               clock=lambda: NOW)


def test_the_post_opts_out_and_the_check_changes_nothing():
    borrowers = OptOuts(Borrower(borrower_id="B-1", name="Ada", email="ada@example.com"))
    token = sign("B-1", "N-1", key=KEY, now=NOW)
    assert check(token, secret=SECRET, borrowers=borrowers, clock=lambda: NOW).notification_id == "N-1"
    assert borrowers.opted_out == []
    assert unsubscribe(token, secret=SECRET, borrowers=borrowers, clock=lambda: NOW).borrower_id == "B-1"
    unsubscribe(token, secret=SECRET, borrowers=borrowers, clock=lambda: NOW)  # a repeat is harmless
    assert borrowers.opted_out == ["B-1", "B-1"]


def test_a_forged_token_or_a_borrower_gone_changes_nothing():
    borrowers = OptOuts(Borrower(borrower_id="B-1", name="Ada"))
    forged = sign("B-1", "N-1", key=unsubscribe_key(b"guessed"), now=NOW)
    with pytest.raises(VerificationError):
        unsubscribe(forged, secret=SECRET, borrowers=borrowers, clock=lambda: NOW)
    gone = sign("B-9", "N-1", key=KEY, now=NOW)
    with pytest.raises(VerificationError) as refused:
        unsubscribe(gone, secret=SECRET, borrowers=borrowers, clock=lambda: NOW)
    assert refused.value.code == "invalid_link" and not isinstance(refused.value, BorrowerNotFound)
    assert borrowers.opted_out == []


def test_links_need_an_http_url():
    with pytest.raises(ValueError, match="http"):
        UnsubscribeLinks("api.example.com", SECRET)


def test_the_template_serves_the_route_without_login_and_lets_the_sender_read_only_the_signing_secret():
    from localcloud.deploy import load_sam

    resources = load_sam(Path(__file__).resolve().parents[2] / "template.yaml")["Resources"]
    events = resources["BorrowerApiFunction"]["Properties"]["Events"].values()
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]): e["Properties"].get("Auth") for e in events}
    assert routes[("POST", "/unsubscribe")] == routes[("GET", "/unsubscribe")] == {"Authorizer": "NONE"}
    sender = resources["SendNoticeFunction"]["Properties"]
    assert sender["Environment"]["Variables"]["VERIFY_SECRET_ARN"] == {"Ref": "VerificationSecret"}
    assert "${BorrowerApi}" in sender["Environment"]["Variables"]["BORROWER_API_URL"]["Fn::Sub"]
    reads = [s for s in sender["Policies"][0]["Statement"] if "secretsmanager:GetSecretValue" in s.get("Action", [])]
    assert reads == [{"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
                      "Resource": {"Ref": "VerificationSecret"}}]


def test_the_sender_signs_no_link_without_its_secret_and_none_without_the_api(load_handler, monkeypatch):
    app = load_handler("send_notice")
    monkeypatch.delenv("BORROWER_API_URL", raising=False)
    assert app._unsubscribe_links() is None  # no borrower API: no List-Unsubscribe at all
    monkeypatch.setenv("BORROWER_API_URL", "https://api.example.com")
    monkeypatch.delenv("VERIFY_SECRET_ARN", raising=False)
    with pytest.raises(RuntimeError, match="VERIFY_SECRET_ARN"):
        app._unsubscribe_links()
