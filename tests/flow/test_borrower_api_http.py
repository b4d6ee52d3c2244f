"""The borrower API over HTTP on 127.0.0.1: the template's routes, the JWT authorizer, JSON errors."""

import json
import urllib.error
import urllib.request

import pytest

from tests.flow.conftest import unique

pytestmark = pytest.mark.flow


def http(cloud, method, path, token=None, body=None):
    request = urllib.request.Request(cloud.api.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def test_the_authorizer_guards_every_route(cloud, platform):
    borrower = platform.borrower()
    assert http(cloud, "GET", "/me/notifications")[0] == 401
    assert http(cloud, "GET", "/me/notifications", token="not-a-jwt")[0] == 401
    wrong_audience = cloud.api.issue_token(borrower["borrower_id"], aud="someone-else")
    assert http(cloud, "GET", "/me/notifications", token=wrong_audience)[0] == 401
    expired = cloud.api.issue_token(borrower["borrower_id"], ttl_s=-10)
    assert http(cloud, "GET", "/me/notifications", token=expired)[0] == 401
    assert http(cloud, "GET", "/no/such/route", token=cloud.api.issue_token("x"))[0] == 404


def test_a_borrower_sees_and_reads_only_their_own_notices(cloud, platform):
    owner, stranger = platform.borrower(), platform.borrower()
    loan_id = unique("L")
    platform.status(loan_id, owner["borrower_id"], "APPROVED", 1, amount=3000, currency="USD")
    cloud.wait_idle()
    token = cloud.api.issue_token(owner["borrower_id"])
    status, page = http(cloud, "GET", "/me/notifications?limit=5", token)
    assert status == 200
    (notice,) = [n for n in page["notifications"] if n["loan_id"] == loan_id]
    assert notice["state"] == "DELIVERED" and notice["channels"][0]["delivery_status"] == "DELIVERED"
    assert http(cloud, "POST", f"/me/notifications/{notice['id']}/read", token)[1]["read"] is True
    other = cloud.api.issue_token(stranger["borrower_id"])
    status, body = http(cloud, "GET", f"/me/notifications/{notice['id']}", other)
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = http(cloud, "PUT", "/me/preferences", token, {"channels": ["FAX"]})
    assert status == 422 and "channels" in json.dumps(body)


def test_new_phone_is_verified_by_code_before_notices_use_it(cloud, platform):
    import re

    from tests.flow.conftest import BORROWERS_SEEN, mobile

    borrower = platform.borrower()
    token = cloud.api.issue_token(borrower["borrower_id"])
    new_phone = mobile()
    BORROWERS_SEEN.append({**borrower, "phone": new_phone})
    # WHEN the borrower changes their number, a code goes to the new number
    status, started = http(cloud, "PUT", "/me/contact", token, {"phone": new_phone})
    assert status == 202 and started["pending"] == "phone"
    (sms,) = platform.sms_to(new_phone)
    code = re.search(r"\b(\d{6})\b", sms["text"]).group(1)
    # AND until it is verified, notices still go to the old number
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    assert len(platform.sms_to(borrower["phone"])) == 1 and len(platform.sms_to(new_phone)) == 1
    # WHEN the code is entered, later notices use the new number
    assert http(cloud, "POST", "/me/contact/verify", token, {"code": "000000" if code != "000000" else "111111"})[0] \
        == 400
    status, verified = http(cloud, "POST", "/me/contact/verify", token, {"code": code})
    assert status == 200 and verified == {"verified": "phone"}
    platform.status(loan_id, borrower["borrower_id"], "DISBURSED", 2)
    cloud.wait_idle()
    assert len(platform.sms_to(new_phone)) == 2 and len(platform.sms_to(borrower["phone"])) == 1
    status, contact = http(cloud, "GET", "/me/contact", token)
    assert contact["phone_verified"] is True and contact["phone"].endswith(new_phone[-4:])
    assert new_phone not in json.dumps(contact)  # masked, even for its owner


def test_five_wrong_codes_lock_verification(cloud, platform):
    from tests.flow.conftest import mobile

    borrower = platform.borrower()
    token = cloud.api.issue_token(borrower["borrower_id"])
    assert http(cloud, "PUT", "/me/contact", token, {"phone": mobile()})[0] == 202
    answers = [http(cloud, "POST", "/me/contact/verify", token, {"code": "99999" + str(n)}) for n in range(5)]
    assert [status for status, _ in answers] == [400, 400, 400, 400, 429]
    assert answers[-1][1]["error"]["code"] == "locked"
    status, body = http(cloud, "PUT", "/me/contact", token, {"phone": mobile()})
    assert status == 429  # no new code while locked
    status, body = http(cloud, "PUT", "/me/contact", token, {"phone": "12"})
    assert status in (400, 422)


def test_new_email_is_confirmed_by_a_signed_link(cloud, platform):
    import re
    from urllib.parse import quote

    from tests.flow.conftest import BORROWERS_SEEN

    borrower = platform.borrower()
    token = cloud.api.issue_token(borrower["borrower_id"])
    new_email = f"{unique('grace')}@example.com"
    BORROWERS_SEEN.append({**borrower, "email": new_email})
    status, started = http(cloud, "PUT", "/me/contact", token, {"email": new_email})
    assert status == 202 and started["pending"] == "email"
    (mail,) = platform.emails_to(new_email)
    link_token = re.search(r"token=([A-Za-z0-9_\-.]+)", mail["body"]).group(1)
    # a tampered link is refused; the real one, opened without logging in, confirms the address
    assert http(cloud, "GET", f"/contact/confirm?token={quote(link_token[:-2] + 'xx')}")[0] == 400
    status, confirmed = http(cloud, "GET", f"/contact/confirm?token={quote(link_token)}")
    assert status == 200 and confirmed == {"verified": "email"}
    saved = platform.borrowers.get_item(Key={"borrower_id": borrower["borrower_id"]})["Item"]
    assert saved["email"] == new_email and saved["email_health"]["verified"] is True
    assert http(cloud, "GET", f"/contact/confirm?token={quote(link_token)}")[0] == 400  # used once


def test_over_http_a_read_completes_the_waiting_execution_and_a_report_opens_a_case(cloud, platform):

    from tests.flow.conftest import executions_for

    borrower = platform.borrower()
    token = cloud.api.issue_token(borrower["borrower_id"])
    loan_id = unique("L")
    platform.status_without_receipt(loan_id, borrower, "REJECTED", 1)
    (notice,) = [n for n in http(cloud, "GET", "/me/notifications", token)[1]["notifications"]
                 if n["loan_id"] == loan_id]
    assert http(cloud, "POST", f"/me/notifications/{notice['id']}/read", token)[0] == 200
    cloud.wait_idle()
    assert executions_for(cloud, loan_id)[0]["status"] == "SUCCEEDED"
    assert platform.emails_to(borrower["email"]) == []
    status, answer = http(cloud, "POST", "/me/reports", token, {"loan_id": loan_id})
    assert status == 201 and answer["notices_on_record"] == 1
    case = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": answer["case_id"]})["Item"]
    assert case["history"][0]["state"] == "DELIVERED"
    status, body = http(cloud, "POST", "/me/reports", token, {"loan_id": "x" * 20_000})
    assert status == 400 and body["error"]["code"] == "too_large" and body["error"]["fields"][0]["field"] == "body"
