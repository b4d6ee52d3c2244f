"""Borrower API (handler in process, API Gateway HTTP API v2 events as the JWT authorizer hands them over)."""

import json

import pytest

from tests.flow.conftest import executions_for, unique

pytestmark = pytest.mark.flow


def call(cloud, method, path, borrower_id, query=None, body=None):
    event = {
        "version": "2.0", "routeKey": f"{method} {path}", "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "queryStringParameters": query, "body": json.dumps(body) if body is not None else None,
        "headers": {"authorization": "Bearer <verified by the authorizer>", "content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "local", "domainPrefix": "local",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "pytest"},
            "requestId": unique("req"), "routeKey": f"{method} {path}", "stage": "$default",
            "time": "29/Nov/2026:08:00:00 +0000", "timeEpoch": 1795939200000,
            "authorizer": {"jwt": {"claims": {"sub": borrower_id, "iss": "https://id.loan-platform.example/",
                                              "aud": "loan-notify"}, "scopes": None}}},
        "isBase64Encoded": False,
    }
    function = cloud.runtime.function("BorrowerApiFunction").name
    payload, is_error, _ = cloud.runtime.invoke(function, event)
    assert not is_error, payload
    response = json.loads(payload)
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def test_reading_the_notice_in_the_app_confirms_the_waiting_execution(cloud, platform):
    # GIVEN an approval whose SMS went out but whose carrier receipt never comes
    borrower = platform.borrower()
    loan_id = unique("L")
    platform.status_without_receipt(loan_id, borrower, "APPROVED", 1, amount=7000, currency="USD")
    # WHEN the borrower opens the message center and reads the notice
    status, page = call(cloud, "GET", "/me/notifications", borrower["borrower_id"])
    assert status == 200
    (notice,) = [n for n in page["notifications"] if n["loan_id"] == loan_id]
    assert notice["title"] == "Your loan is approved" and "7,000.00 USD" in notice["text"]
    assert notice["read"] is False and notice["channels"][0]["channel"] == "SMS"
    status, read = call(cloud, "POST", f"/me/notifications/{notice['id']}/read", borrower["borrower_id"])
    assert status == 200 and read["read"] is True
    cloud.wait_idle()
    # THEN that read is the confirmation the execution was waiting for
    (execution,) = executions_for(cloud, loan_id)
    assert execution["status"] == "SUCCEEDED"
    (stored,) = platform.notices(loan_id)
    assert stored["state"] == "DELIVERED" and stored["attempts"][0]["delivery_status"] == "READ"
    assert platform.emails_to(borrower["email"]) == []  # no fallback once the borrower has it


def test_another_borrowers_notice_is_not_found_and_errors_are_json(cloud, platform):
    owner, stranger = platform.borrower(), platform.borrower()
    loan_id = unique("L")
    platform.status(loan_id, owner["borrower_id"], "DISBURSED", 1)
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    status, body = call(cloud, "GET", f"/me/notifications/{notice['notification_id']}", stranger["borrower_id"])
    assert status == 404 and body == {"error": {"code": "not_found", "message": "No such notification", "fields": []}}
    status, _ = call(cloud, "POST", f"/me/notifications/{notice['notification_id']}/read", stranger["borrower_id"])
    assert status == 404
    status, body = call(cloud, "GET", "/me/notifications", owner["borrower_id"], {"limit": "1000"})
    assert status == 422 and "limit" in json.dumps(body)
    status, body = call(cloud, "GET", "/me/notifications", owner["borrower_id"], {"page": "not-a-token"})
    assert status == 400 and body["error"]["code"] == "bad_request"


def test_message_center_pages_newest_first(cloud, platform):
    borrower = platform.borrower()
    loan_id = unique("L")
    for version, status in enumerate(["APPROVED", "DISBURSED", "SETTLED"], start=1):
        platform.status(loan_id, borrower["borrower_id"], status, version)
        cloud.wait_idle()
    status, first = call(cloud, "GET", "/me/notifications", borrower["borrower_id"], {"limit": "2"})
    assert status == 200 and [n["status"] for n in first["notifications"]] == ["SETTLED", "DISBURSED"]
    status, second = call(cloud, "GET", "/me/notifications", borrower["borrower_id"],
                          {"limit": "2", "page": first["next_page"]})
    assert [n["status"] for n in second["notifications"]] == ["APPROVED"]


def test_preferences_reorder_channels_and_opt_out_of_non_critical_notices(cloud, platform):
    borrower = platform.borrower()
    prefs = {"channels": ["EMAIL", "SMS"], "language": "zh-CN", "quiet_hours": None, "opt_out_non_critical": True}
    status, saved = call(cloud, "PUT", "/me/preferences", borrower["borrower_id"], body=prefs)
    assert status == 200 and saved["channels"] == ["EMAIL", "SMS"]
    status, got = call(cloud, "GET", "/me/preferences", borrower["borrower_id"])
    assert status == 200 and got == {**prefs, "quiet_hours": None}
    # a critical notice still goes out, by the preferred channel, in the chosen language
    approved, settled = unique("L"), unique("L")
    platform.status(approved, borrower["borrower_id"], "APPROVED", 1)
    platform.status(settled, borrower["borrower_id"], "SETTLED", 1)
    cloud.wait_idle()
    (email,) = platform.emails_to(borrower["email"])
    assert email["subject"] == "您的贷款已批准"
    (skipped,) = platform.notices(settled)
    assert skipped["state"] == "OPTED_OUT" and not skipped.get("attempts")
    # bad input is refused with the field named, never a 500
    status, body = call(cloud, "PUT", "/me/preferences", borrower["borrower_id"],
                        body={**prefs, "channels": ["SMS", "SMS"], "colour": "blue"})
    assert status == 422 and "channels" in json.dumps(body) and "colour" in json.dumps(body)


def test_i_was_never_notified_opens_a_case_with_the_loans_history(cloud, platform, capsys):
    from loan_notify_ops.cli import main as ops

    borrower, stranger = platform.borrower(), platform.borrower()
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "REJECTED", 1)
    cloud.wait_idle()
    status, answer = call(cloud, "POST", "/me/reports", borrower["borrower_id"], body={"loan_id": loan_id})
    assert status == 201 and answer["notices_on_record"] == 1 and "contact you before" in answer["next"]
    case = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": answer["case_id"]})["Item"]
    assert case["kind"] == "borrower_report" and case["state"] == "OPEN"
    assert case["history"][0]["status"] == "REJECTED" and case["history"][0]["attempts"][0]["channel"] == "SMS"
    assert borrower["phone"] not in json.dumps(case, default=str)
    # ops see it with the other cases, and close it like any case
    assert ops(["cases", "list", "--json"]) == 0
    assert answer["case_id"] in capsys.readouterr().out
    assert ops(["cases", "resolve", answer["case_id"], "--decision", "reached_by_phone", "--note", "called back",
                "--by", "ops.li"]) == 0
    # someone else's loan answers like an unknown loan (no notice on record for the caller); unknown fields are
    # refused
    status, answer = call(cloud, "POST", "/me/reports", stranger["borrower_id"], body={"loan_id": loan_id})
    assert status == 201 and answer["notices_on_record"] == 0
    status, body = call(cloud, "POST", "/me/reports", borrower["borrower_id"], body={"loan": loan_id})
    assert status == 422
