"""The review console in headless Chromium: sign in, a case from a real flow, take it, a second person sees it
taken, decide it and the execution resumes; injected markup stays text; a borrower's token is refused."""

import json
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from loan_notify.review import ReviewCases
from tests.browser.conftest import ARTIFACTS, screenshot
from tests.flow.conftest import executions_for, unique

pytestmark = pytest.mark.browser


def _open_case(cloud, platform, **borrower_fields):
    """A notice no channel can deliver (an unusable phone, no email, no app): the real flow opens a case."""
    loan_id = borrower_fields.pop("loan_id", None) or unique("L")
    status_reason = borrower_fields.pop("status_reason", "income not verified")
    borrower = platform.borrower(phone="+9991234567", email=None, app_user=False, **borrower_fields)
    platform.status(loan_id, borrower["borrower_id"], "REJECTED", 1, status_reason=status_reason)
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "NEEDS_REVIEW"
    return borrower, loan_id, notice


def _report(cloud, borrower_id, loan_id):
    """The borrower says "I was never notified" through the borrower API: a case of its own."""
    request = urllib.request.Request(f"{cloud.api.url}/me/reports", method="POST",
                                     data=json.dumps({"loan_id": loan_id}).encode(),
                                     headers={"Authorization": f"Bearer {cloud.api.issue_token(borrower_id)}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return json.loads(response.read())["case_id"]


def _sign_in(page, cloud, name):
    page.goto(f"{cloud.api.url}/console")
    page.fill("#sign-in-name", name)
    page.click("#local-sign-in button[type=submit]")
    expect(page.locator("#who")).to_contain_text(name)


def test_sign_in_take_a_case_a_second_person_sees_it_taken_decide_and_the_execution_resumes(
        cloud, platform, new_page):
    # GIVEN a case opened by a real flow on the local cloud, and the borrower's own report about the same loan
    # (through the borrower API), whose deadline has passed
    borrower, loan_id, notice = _open_case(cloud, platform)
    case_id = notice["case_id"]
    report_id = _report(cloud, borrower["borrower_id"], loan_id)
    cloud.table("ReviewCasesTableName").update_item(
        Key={"case_id": report_id}, UpdateExpression="SET due_at = :past",
        ExpressionAttributeValues={":past": "2026-01-01T00:00:00.000Z"})
    # WHEN Li signs in: the case is in the queue, with the counts above it
    li = new_page("en-US", refresh_ms=300)
    _sign_in(li, cloud, "ops.li")
    row = li.locator(f'tr[data-case-id="{case_id}"]')
    expect(row).to_contain_text(loan_id)
    expect(row).to_contain_text("No channel delivered")
    expect(li.locator('[data-count="overdue"] b')).not_to_have_text("0")
    # AND filtered by the loan: the overdue report first (most urgent), marked overdue
    li.fill("#filter-loan", loan_id)
    expect(li.locator("#cases tbody tr")).to_have_count(2)
    first = li.locator("#cases tbody tr").first
    expect(first).to_have_attribute("data-case-id", report_id)
    expect(first).to_have_class("overdue")
    expect(first).to_contain_text("Borrower report")
    expect(first.locator(".badge")).to_have_text("overdue")
    li.select_option("#filter-category", "no_channel")
    expect(li.locator("#cases tbody tr")).to_have_count(1)
    li.select_option("#filter-category", "")
    expect(li.locator("#cases tbody tr")).to_have_count(2)
    # AND the queue refreshes by itself: Kim takes the report, Li's page shows it without a reload
    ReviewCases(cloud.table("ReviewCasesTableName")).take(report_id, "ops.kim")
    expect(first.locator(".assignee")).to_have_text("ops.kim")
    screenshot(li, "queue")
    # AND Sam, whose browser asks for Chinese, opens the same case before anyone took it
    sam = new_page("zh-CN")
    _sign_in(sam, cloud, "ops.sam")
    expect(sam.locator("h1")).to_have_text("人工处理台")
    sam.goto(f"{cloud.api.url}/console#/case/{quote(case_id, safe='')}")
    expect(sam.locator("#owner")).to_have_text("尚无人认领")
    # WHEN Li opens it and takes it
    row.locator("a").click()
    expect(li.locator("#case-title")).to_contain_text(case_id)
    expect(li.locator("#borrower")).to_contain_text("+99****4567")
    expect(li.locator("#notices .ev-attempt")).to_contain_text("SMS")
    li.click("#take")
    expect(li.locator("#owner")).to_have_text("You have this case")
    # THEN Sam's take loses the conditional write and Sam sees who has the case; Sam's page offers no decision
    sam.click("#take")
    expect(sam.locator("#flash")).to_have_text("已由 ops.li 认领")
    expect(sam.locator("#owner")).to_have_text("已由 ops.li 认领")
    expect(sam.locator("#decision")).to_be_hidden()
    # WHEN Li records "reached by phone" with a note
    li.check("input[name=decision][value=reached_by_phone]")
    li.fill("#decision textarea[name=note]", "explained the rejection by phone")
    screenshot(li, "case")
    li.click("#decision button[type=submit]")
    expect(li.locator("#decision-result")).to_contain_text("execution resumed")
    # THEN the waiting execution resumed and ended, and the ledger shows the decision (and so does the page)
    (execution,) = executions_for(cloud, loan_id)
    assert cloud.wait_execution(execution["name"])["status"] == "SUCCEEDED"
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED_BY_PERSON"
    assert [(a["decision"], a["by"]) for a in notice["human_actions"]] == [("reached_by_phone", "ops.li")]
    expect(li.locator("#notices .ev-human_action")).to_contain_text("explained the rejection by phone")
    expect(li.locator("#decision")).to_be_hidden()
    # AND the loan's evidence downloads as JSON, the decision in it
    with li.expect_download() as download:
        li.click("#evidence")
    evidence = json.loads(Path(download.value.path()).read_text())
    assert evidence["loan_id"] == loan_id
    assert [a["by"] for n in evidence["notices"] for a in n["human_actions"]] == ["ops.li"]
    # AND the language can be switched
    li.select_option("#lang", "zh-CN")
    expect(li.locator("h1")).to_have_text("人工处理台")
    expect(li.locator("#notices .ev-human_action")).to_contain_text("已电话告知")


def test_borrower_controlled_text_is_rendered_as_text_never_as_markup(cloud, platform, new_page):
    # GIVEN markup in the borrower's name and the status reason (through the real flow), and in a case's loan id
    # (the data contract refuses markup in a loan id at the boundary; a case from elsewhere may still carry one)
    script = '<script>window.__pwned="{0}"</script><img src=x onerror="window.__pwned=\'{0}\'">'
    borrower, loan_id, notice = _open_case(cloud, platform, name=script.format("name"),
                                           status_reason=script.format("reason"))
    page = new_page("en-US")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    # WHEN a reviewer finds the case by its loan id and opens it
    _sign_in(page, cloud, "ops.li")
    page.fill("#filter-loan", loan_id)
    expect(page.locator("#cases tbody tr")).to_have_count(1)  # the filtered answer (the first one lists them all)
    page.locator("#cases tbody tr a").click()
    # THEN the reason appears literally, nothing ran, no element came out of it, and the name is not shown at all
    expect(page.locator("#notices .ev-status_change")).to_contain_text(script.format("reason"))
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main script, main img").count() == 0
    assert borrower["name"] not in page.content()
    # AND WHEN the case's loan id itself is markup
    marked = unique("L") + script.format("loan")
    cloud.table("ReviewCasesTableName").update_item(
        Key={"case_id": notice["case_id"]}, UpdateExpression="SET loan_id = :l",
        ExpressionAttributeValues={":l": marked})
    page.click("a[data-i18n=back]")
    page.fill("#filter-loan", marked)
    expect(page.locator("#cases tbody tr")).to_have_count(1)
    link = page.locator("#cases tbody tr a")
    expect(link).to_have_text(marked)
    link.click()
    expect(page.locator("#case-facts .loan")).to_have_text(marked)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main script, main img").count() == 0
    assert dialogs == []


def test_a_borrower_token_is_refused(cloud, new_page):
    page = new_page("en-US")
    page.goto(f"{cloud.api.url}/console")
    for token in (cloud.api.issue_token("B-1"), cloud.api.issue_token_for("OpsJwt", "ops.li", scope="profile")):
        page.fill("#sign-in-token", token)
        page.click("#token-sign-in button[type=submit]")
        expect(page.locator("#flash")).to_have_text(
            "This token may not use the review console (it needs the ops audience and scope).")
        expect(page.locator("#queue")).to_be_hidden()
        # The page keeps the token only until the console refuses it. The flash from the first token is still shown
        # while the second is checked, so wait for the refusal itself: the token gone from the session. (Polled from
        # here: wait_for_function polls with eval in the page, which the console's CSP refuses.)
        deadline = time.monotonic() + 5
        while page.evaluate("sessionStorage.getItem('console.token')") is not None and time.monotonic() < deadline:
            page.wait_for_timeout(20)
        assert page.evaluate("sessionStorage.getItem('console.token')") is None
    # and the JSON routes answer a borrower's token with 401, whatever the page does
    status = page.evaluate("""async (token) => (await fetch('/console/api/case/decision', {method: 'POST',
        headers: {Authorization: 'Bearer ' + token, 'Content-Type': 'application/json'},
        body: JSON.stringify({case_id: 'x', decision: 'closed', note: 'x'})})).status""",
                           cloud.api.issue_token("B-1"))
    assert status == 401


def test_the_page_loads_in_under_300_ms(cloud, new_page):
    """Navigation start to the load event (module scripts, styles and the sign-in form in place), five loads after
    a first one; the median is kept in the artifacts."""
    page = new_page("en-US")
    page.goto(f"{cloud.api.url}/console")
    timings = []
    for _ in range(5):
        page.reload()
        expect(page.locator("#sign-in")).to_be_visible()
        timings.append(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
    median = sorted(timings)[2]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "page-load.json").write_text(json.dumps({"load_event_end_ms": timings, "median_ms": median}))
    assert median < 300, timings
