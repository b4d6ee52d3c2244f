"""A status change whose borrower row is not there yet waits for it (bounded), then goes to a person."""

import time
from datetime import datetime, timedelta, timezone

import pytest

from loan_notify.clock import iso
from loan_notify.models import notification_id
from loan_notify.policy import BORROWER_WAIT_SECONDS
from tests.flow.conftest import entered_states, seed_notice, unique

pytestmark = pytest.mark.flow


def _router_paused(cloud):
    lam = cloud.client("lambda")
    (mapping,) = lam.list_event_source_mappings(
        FunctionName=cloud.runtime.function("StreamRouterFunction").name)["EventSourceMappings"]
    return lam, mapping["UUID"]


def test_a_borrower_written_after_the_loan_gets_the_notice_and_holds_up_no_other_loan(cloud, platform):
    # GIVEN one batch with an approval whose borrower row the platform has not written yet, and another loan's
    late_id, late_loan, other_loan = unique("B-late"), unique("L"), unique("L")
    other = platform.borrower()
    lam, mapping = _router_paused(cloud)
    lam.update_event_source_mapping(UUID=mapping, Enabled=False)
    try:
        platform.status(late_loan, late_id, "APPROVED", 1, amount=9000, currency="USD")
        platform.status(other_loan, other["borrower_id"], "APPROVED", 1)
    finally:
        lam.update_event_source_mapping(UUID=mapping, Enabled=True)
    # WHEN the other loan's notice is delivered, the first one waits for its borrower (nothing rejected)
    deadline = time.monotonic() + 30
    while not platform.notices(other_loan) or platform.notices(other_loan)[0]["state"] != "DELIVERED":
        assert time.monotonic() < deadline, "the other loan's notice was held up"
        time.sleep(0.005)
    # (the two executions run side by side: the late one's Prepare may record the missing borrower a moment later)
    while "borrower_missing_since" not in (platform.notices(late_loan) or [{}])[0]:
        assert time.monotonic() < deadline, "the late loan's notice did not record its missing borrower"
        time.sleep(0.005)
    (waiting,) = platform.notices(late_loan)
    assert waiting["state"] == "STARTED" and waiting["attempts"] == [] and waiting["borrower_missing_since"]
    # (Prepare records the missing borrower before it returns; its execution enters the wait a moment after)
    while "Wait for the borrower record" not in entered_states(cloud, waiting["execution_name"]):
        assert time.monotonic() < deadline, "the late loan's execution did not wait for its borrower"
        time.sleep(0.005)
    # AND when the borrower row arrives a moment later
    borrower = platform.borrower(borrower_id=late_id)
    cloud.wait_idle()
    # THEN the notice goes out and is delivered as usual: no review case
    (notice,) = platform.notices(late_loan)
    assert notice["state"] == "DELIVERED" and "case_id" not in notice
    assert len(platform.sms_to(borrower["phone"])) == 1 and len(platform.sms_to(other["phone"])) == 1
    states = entered_states(cloud, notice["execution_name"])
    assert states[:4] == ["Prepare notice", "Send now?", "Wait for the borrower record", "Prepare notice"]
    assert states[-1] == "Wait for the delivery receipt" and "Open a review case" not in states


def test_a_borrower_still_missing_after_the_limit_becomes_a_review_case(cloud, platform):
    # GIVEN a notice whose borrower was first missed longer ago than BorrowerWaitSeconds (the ledger item as the
    # earlier looks left it; waiting that long in real time is what the unit tests do with a fake clock)
    loan_id, borrower_id = unique("L"), unique("B-never")
    missed = datetime.now(timezone.utc) - timedelta(seconds=BORROWER_WAIT_SECONDS + 1)
    nid = notification_id(loan_id, "REJECTED", 1)
    seed_notice(platform.ledger._table, {
        "notification_id": nid, "loan_id": loan_id, "borrower_id": borrower_id, "status": "REJECTED",
        "version": 1, "state": "STARTED", "execution_name": nid, "attempts": [], "created_at": iso(missed),
        "updated_at": iso(missed), "borrower_missing_since": iso(missed)})
    # WHEN the status change is (re)delivered and the execution prepares it, the borrower still missing
    platform.status(loan_id, borrower_id, "REJECTED", 1)
    cloud.wait_idle()
    # THEN the notice is not rejected: a review case owns it, with the reason borrower_not_found
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "NEEDS_REVIEW" and notice["reason"] == "borrower_not_found"
    case = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": notice["case_id"]})["Item"]
    assert case["reason"] == "borrower_not_found" and case["state"] == "OPEN"
    assert notice["borrower_missing_since"] == iso(missed)
    states = entered_states(cloud, nid)
    assert states == ["Prepare notice", "Borrower not found", "Open a review case"]
