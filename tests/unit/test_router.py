import json
import re

import pytest
from botocore.exceptions import ClientError

from loan_notify.router import RouteOutcome, route
from tests.unit.fakes import FakeLedger, FakeStarter
from tests.unit.images import loan_image


@pytest.fixture
def ports():
    return {"ledger": FakeLedger(), "start": FakeStarter()}


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


def test_a_borrower_not_written_yet_does_not_reject_the_change(ports):
    # GIVEN a loan whose borrower row the platform has not written yet (the router does not look it up)
    # WHEN its status change is routed
    routed = route("e2", "INSERT", loan_image(borrower_id="B-404"), None, **ports)
    # THEN the notice is opened and its execution started: Prepare waits for the borrower, bounded
    assert routed.outcome is RouteOutcome.STARTED
    assert ports["ledger"].items[routed.notification_id]["state"] == "STARTED"
    assert list(ports["start"].started) == [routed.notification_id]


def test_unchanged_status_and_removals_are_ignored(ports):
    assert route("e3", "MODIFY", loan_image(), loan_image(), **ports).outcome is RouteOutcome.IGNORED
    assert route("e4", "REMOVE", None, loan_image(), **ports).outcome is RouteOutcome.IGNORED


def test_infrastructure_errors_propagate_so_the_record_is_retried(ports):
    ports["start"] = FakeStarter(fail_with=ClientError({"Error": {"Code": "ThrottlingException"}}, "StartExecution"))
    with pytest.raises(ClientError):
        route("e5", "INSERT", loan_image(), None, **ports)


class AwsLikeStarter(FakeStarter):
    """StartExecution as AWS validates names: at most 80 characters, none it refuses."""

    def __call__(self, name: str, payload: str) -> bool:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name):
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "name too long"}}, "StartExecution")
        return super().__call__(name, payload)


@pytest.mark.parametrize("status", ["PRELIMINARY_APPROVED", "DOCUMENTS_REQUIRED"])
def test_long_notification_ids_get_an_execution_name_that_fits_and_repeats(ports, status):
    # GIVEN a 36-character loan id, a long status and an epoch-millisecond version: an 83-character notification id
    loan_id = "L-" + "7" * 34
    ports["start"] = AwsLikeStarter()
    image = loan_image(loan_id=loan_id, status=status, version=1764400000123)
    # WHEN the change is routed, then delivered again
    first = route("e1", "INSERT", image, None, **ports)
    again = route("e1", "INSERT", image, None, **ports)
    # THEN one execution starts, under a valid name that keeps the loan id prefix, the same on redelivery
    assert len(first.notification_id) > 80
    assert (first.outcome, again.outcome) == (RouteOutcome.STARTED, RouteOutcome.DUPLICATE)
    (name,) = ports["start"].started
    assert len(name) <= 80 and name.startswith(f"{loan_id}-{status}-v17644")
    # AND the ledger item is keyed by the notification id and names the execution; the input carries the id
    notice = ports["ledger"].items[first.notification_id]
    assert notice["execution_name"] == name
    assert json.loads(ports["start"].started[name])["notification_id"] == first.notification_id
    # AND the next version is another execution
    route("e2", "MODIFY", loan_image(loan_id=loan_id, status="APPROVED", version=1764400000124), image, **ports)
    assert len(ports["start"].started) == 2


def test_short_notification_ids_are_their_own_execution_name(ports):
    routed = route("e1", "INSERT", loan_image(), None, **ports)
    assert list(ports["start"].started) == [routed.notification_id]
    assert ports["ledger"].items[routed.notification_id]["execution_name"] == routed.notification_id
