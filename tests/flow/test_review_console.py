"""The review console's JSON routes and page on the local HTTP API: the ops authorizer, the queue, a case's
timeline, taking a case, deciding it (the same resolve as the ops command), the evidence export."""

import json
import urllib.error
import urllib.request

import pytest

from loan_notify.evidence import export
from loan_notify.ledger import Ledger
from loan_notify.review import ReviewCases
from tests.flow.conftest import executions_for, unique

pytestmark = pytest.mark.flow


def _call(cloud, method, path, token=None, body=None, headers=None):
    request = urllib.request.Request(
        cloud.api.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={**({"Authorization": f"Bearer {token}"} if token else {}),
                 **({"Content-Type": "application/json"} if body is not None else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, response.headers, raw
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def _json(cloud, method, path, token=None, body=None):
    status, _, raw = _call(cloud, method, path, token, body)
    return status, json.loads(raw) if raw else None


def _ops(cloud, name):
    return cloud.api.issue_token_for("OpsJwt", name)


@pytest.fixture
def undeliverable(cloud, platform):
    """A notice no channel can deliver (an unusable phone, no email): an open case."""
    borrower = platform.borrower(phone="+9991234567", email=None, app_user=False)
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "REJECTED", 1, status_reason="income not verified")
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    return borrower, loan_id, notice


def test_queue_case_take_decide_and_evidence(cloud, platform, undeliverable):
    borrower, loan_id, notice = undeliverable
    li, sam = _ops(cloud, "ops.li"), _ops(cloud, "ops.sam")
    # the queue: the case, its category, counts over every open case; filters by reason and loan
    status, data = _json(cloud, "GET", f"/console/api/cases?loan={loan_id}", li)
    assert status == 200
    (row,) = data["cases"]
    assert (row["case_id"], row["category"], row["overdue"], row["assignee"]) == (
        notice["case_id"], "no_channel", False, None)
    assert data["counts"]["open"] >= 1 and data["counts"]["no_channel"] >= 1
    assert _json(cloud, "GET", f"/console/api/cases?loan={loan_id}&category=borrower_report", li)[1]["cases"] == []
    assert _json(cloud, "GET", "/console/api/cases?category=nonsense", li)[0] == 422
    # a case: masked contacts and their health, and the loan's timeline; no personal data in clear
    status, view = _json(cloud, "GET", f"/console/api/case?case_id={notice['case_id']}", li)
    assert status == 200
    text = json.dumps(view)
    assert borrower["phone"] not in text and borrower["name"] not in text and "task_token" not in text
    assert view["borrower"]["contacts"] == [{"channel": "SMS", "value": "+99****4567",
                                             "health": {"verified": False, "bounced": False, "opted_out": False}}]
    (shown,) = view["notices"]
    kinds = [e["kind"] for e in shown["timeline"]]
    assert kinds[0] == "status_change" and "attempt" in kinds and kinds[-1] == "case_opened"
    attempt = next(e for e in shown["timeline"] if e["kind"] == "attempt")
    assert (attempt["channel"], attempt["result"]) == ("SMS", "FAILED_PERMANENT") and attempt["error"]
    assert shown["timeline"][0]["status_reason"] == "income not verified"
    # taking it is a conditional write: the second person learns who has it, and may not decide
    assert _json(cloud, "POST", "/console/api/case/take", li, {"case_id": notice["case_id"]})[1]["assignee"] == "ops.li"
    assert _json(cloud, "POST", "/console/api/case/take", li, {"case_id": notice["case_id"]})[0] == 200
    status, taken = _json(cloud, "POST", "/console/api/case/take", sam, {"case_id": notice["case_id"]})
    assert (status, taken["error"]["assignee"]) == (409, "ops.li")
    decision = {"case_id": notice["case_id"], "decision": "reached_by_phone", "note": "explained by phone"}
    assert _json(cloud, "POST", "/console/api/case/decision", sam, decision)[0] == 409
    # a decision needs a note, and the contact for contact_corrected
    assert _json(cloud, "POST", "/console/api/case/decision", li, {**decision, "note": "  "})[0] == 422
    assert _json(cloud, "POST", "/console/api/case/decision", li,
                 {**decision, "decision": "contact_corrected"})[0] == 422
    # the holder decides: the waiting execution resumes, the ledger records who and why
    status, result = _json(cloud, "POST", "/console/api/case/decision", li, decision)
    assert (status, result["outcome"], result["execution_resumed"]) == (200, "execution resumed", True)
    cloud.wait_idle()
    (execution,) = executions_for(cloud, loan_id)
    assert execution["status"] == "SUCCEEDED"
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED_BY_PERSON"
    assert [(a["decision"], a["by"], a["note"]) for a in notice["human_actions"]] == [
        ("reached_by_phone", "ops.li", "explained by phone")]
    assert _json(cloud, "GET", f"/console/api/cases?loan={loan_id}", li)[1]["cases"] == []
    # the evidence export is the ops command's
    status, headers, raw = _call(cloud, "GET", f"/console/api/evidence?loan_id={loan_id}", li)
    exported = json.loads(raw)
    expected = export(loan_id, ledger=Ledger(cloud.table("NotificationsTableName")),
                      cases=ReviewCases(cloud.table("ReviewCasesTableName")))
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    assert {**exported, "generated_at": None} == {**expected, "generated_at": None}


def test_only_ops_tokens_with_the_scope_reach_the_json_routes(cloud, undeliverable):
    _, _, notice = undeliverable
    borrower_token = cloud.api.issue_token(notice["borrower_id"])
    unscoped = cloud.api.issue_token_for("OpsJwt", "ops.li", scope="profile")
    decision = {"case_id": notice["case_id"], "decision": "closed", "note": "x"}
    for path, body in (("/console/api/cases", None), ("/console/api/case/decision", decision),
                       ("/console/api/case/take", {"case_id": notice["case_id"]})):
        method = "GET" if body is None else "POST"
        assert _call(cloud, method, path, borrower_token, body)[0] == 401
        assert _call(cloud, method, path, None, body)[0] == 401
        assert _call(cloud, method, path, unscoped, body)[0] == 403
    case = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": notice["case_id"]})["Item"]
    assert case["state"] == "OPEN" and "assignee" not in case and "pending" not in case


def test_the_page_is_served_with_a_csp_and_cacheable_assets(cloud):
    status, headers, raw = _call(cloud, "GET", "/console")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert headers["Cache-Control"] == "no-cache" and headers["X-Content-Type-Options"] == "nosniff"
    page = raw.decode()
    script = page.split('<script type="module" src="', 1)[1].split('"', 1)[0]
    assert script.startswith("/console/app.js?v=")
    status, headers, body = _call(cloud, "GET", script)
    assert status == 200 and headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert headers["Content-Type"].startswith("text/javascript")
    assert "./i18n.js?v=" in body.decode() and "innerHTML" not in body.decode()
    assert _call(cloud, "GET", "/console/app.js", headers={"If-None-Match": headers["ETag"]})[0] == 304
    assert _call(cloud, "GET", "/console/secrets.txt")[0] == 404
