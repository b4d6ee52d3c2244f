import json

import pytest
from botocore.exceptions import ClientError

from loan_notify.models import Borrower
from loan_notify.router import RouteOutcome, route
from tests.unit.fakes import FakeBorrowers, FakeLedger, FakeStarter
from tests.unit.images import loan_image


@pytest.fixture
def ports():
    return {"ledger": FakeLedger(), "borrowers": FakeBorrowers(Borrower(borrower_id="B-1")), "start": FakeStarter()}


def test_status_change_starts_one_execution_with_ids_only(ports):
    routed = route("e1", "MODIFY", loan_image(status="APPROVED", amount=5000), loan_image(status="SUBMITTED"),
                   **ports)
    assert routed.outcome is RouteOutcome.STARTED
    payload = json.loads(ports["start"].started[routed.notification_id])
    assert payload == {"notification_id": routed.notification_id, "loan_id": "L-1", "borrower_id": "B-1",
                       "status": "APPROVED", "version": 2}
    assert ports["ledger"].items[routed.notification_id]["state"] == "STARTED"


def test_same_change_delivered_twice_is_one_notice(ports):
    first = route("e1", "INSERT", loan_image(), None, **ports)
    second = route("e1", "INSERT", loan_image(), None, **ports)
    assert (first.outcome, second.outcome) == (RouteOutcome.STARTED, RouteOutcome.DUPLICATE)
    assert len(ports["start"].started) == 1
    assert ports["ledger"].items[first.notification_id]["duplicate_deliveries"] == 1


@pytest.mark.parametrize("image, reason", [
    (loan_image(status="MAYBE"), "invalid_status"),
    ({k: v for k, v in loan_image().items() if k != "borrower_id"}, "missing_borrower_id"),
    (loan_image(version=-3), "invalid_version"),
    ({"loan_id": {"S": "L-1"}, "status": {"BAD": "x"}}, "malformed_image"),
    ("not a map", "malformed_image"),
])
def test_bad_records_are_recorded_with_a_reason_and_never_raise(ports, image, reason):
    routed = route("e9", "INSERT", image, None, **ports)
    assert routed.outcome is RouteOutcome.REJECTED and routed.reason == reason
    assert ports["ledger"].items[routed.notification_id]["reason"] == reason
    assert ports["start"].started == {}


def test_unknown_borrower_is_rejected_not_started(ports):
    routed = route("e2", "INSERT", loan_image(borrower_id="B-404"), None, **ports)
    assert routed.reason == "borrower_not_found"
    assert ports["ledger"].items[routed.notification_id]["state"] == "REJECTED"


def test_unchanged_status_and_removals_are_ignored(ports):
    assert route("e3", "MODIFY", loan_image(), loan_image(), **ports).outcome is RouteOutcome.IGNORED
    assert route("e4", "REMOVE", None, loan_image(), **ports).outcome is RouteOutcome.IGNORED


def test_infrastructure_errors_propagate_so_the_record_is_retried(ports):
    ports["start"] = FakeStarter(fail_with=ClientError({"Error": {"Code": "ThrottlingException"}}, "StartExecution"))
    with pytest.raises(ClientError):
        route("e5", "INSERT", loan_image(), None, **ports)
