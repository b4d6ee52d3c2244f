"""Faults and redeliveries in the middle of traffic (`make soak`, sized for the suite), and the retry that keeps a
Step Functions task's dead sandbox from becoming a person's work."""

from __future__ import annotations

import random

import pytest

from loadtools import fault_soak

from .conftest import entered_states, executions_for, unique

pytestmark = pytest.mark.flow


def test_faults_and_redeliveries_in_traffic_leave_every_change_confirmed_or_owned_and_nothing_sent_twice(cloud):
    # GIVEN 60 status changes for reachable, SMS-failing and unreachable borrowers, with a fault after every other
    # write: redelivered stream records and receipts, sandboxes dying before or after their work, providers
    # throttling, down or losing an answer, callbacks throttled
    result = fault_soak.run(changes=60, seed=20261130, fault_rate=0.5, cloud=cloud)
    # THEN every change has one notice, confirmed or owned by a person; no message twice on a channel, none the
    # ledger does not hold; no personal data in executions or logs; every hash chain verifies
    assert result["violations"] == []
    assert sum(result["faults"].values()) >= 20 and result["crashes"], result
    assert set(result["ended"]) <= fault_soak.SETTLED_OK and result["ended"].get("DELIVERED", 0) >= 30


def test_a_prepare_sandbox_that_dies_is_retried_not_handed_to_a_person(cloud, platform):
    # GIVEN the Prepare Lambda's sandbox dies once, after doing its work (a timeout: Step Functions sees Lambda.Unknown)
    faults = fault_soak.Faults(cloud, random.Random(1))
    faults.crash_next("PrepareNoticeFunction", "after")
    try:
        borrower = platform.borrower()
        loan_id = unique("L")
        platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
        cloud.wait_idle()
    finally:
        faults.undo()
    # THEN the task was retried and the notice delivered: no review case, one SMS
    assert faults.crashes == {"PrepareNoticeFunction after": 1}
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED" and not notice.get("case_id")
    assert len(platform.sms_to(borrower["phone"])) == 1
    (execution,) = executions_for(cloud, loan_id)
    assert entered_states(cloud, execution["name"]).count("Prepare notice") == 1  # a retry, not a second entry
    assert "Could not prepare the notice" not in entered_states(cloud, execution["name"])


def test_the_soak_names_a_reachable_borrower_sent_to_a_person_and_a_second_message_on_a_channel():
    sms = {"channel": "SMS", "message_id": "m1", "result": "SENT", "delivery_status": "FAILED"}
    review = {"notification_id": "n1", "state": "NEEDS_REVIEW", "reason": "no_channel_delivered", "attempts": [sms]}
    change = {"status": "APPROVED"}
    assert fault_soak._notice_problems(review, change, "unreachable", newer=False, owned={"n1"}) == []
    (problem,) = fault_soak._notice_problems(review, change, "reachable", newer=False, owned={"n1"})
    assert "a reachable borrower (reachable) went to a person" in problem
    assert fault_soak._notice_problems(review, change, "unreachable", newer=False, owned=set()) == [
        "NEEDS_REVIEW without an open review case"]
    twice = {"notification_id": "n2", "state": "DELIVERED", "attempts": [
        {**sms, "delivery_status": "DELIVERED"}, {**sms, "message_id": "m2", "delivery_status": "DELIVERED"}]}
    assert fault_soak._notice_problems(twice, change, "reachable", newer=False, owned=set()) == [
        "more than one message on ['SMS']", "2 confirmed messages"]
