import re

import pytest
from pydantic import ValidationError

from loan_notify.models import LoanImage, NoticeRef, notification_id

EXECUTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def _loan(**overrides):
    data = {"loan_id": "L-1", "borrower_id": "B-1", "status": "APPROVED", "updated_at": "2026-11-29T08:00:00Z",
            "version": 3}
    return LoanImage.model_validate({**data, **overrides})


def test_notification_id_is_deterministic_and_a_valid_execution_name():
    # GIVEN the same (loan, status, version) twice, and a loan id full of characters executions refuse
    first = notification_id("L-1", "APPROVED", 3)
    odd = notification_id("loan/2026 #7:" + "x" * 100, "PRELIMINARY_APPROVED", 123456)
    # THEN the id repeats exactly and every id fits Step Functions' execution-name rules
    assert first == notification_id("L-1", "APPROVED", 3)
    assert first != notification_id("L-1", "APPROVED", 4)
    assert first != notification_id("L-1", "REJECTED", 3)
    assert EXECUTION_NAME.match(first) and EXECUTION_NAME.match(odd)


def test_ids_that_slug_alike_stay_apart():
    assert notification_id("a/b", "APPROVED", 1) != notification_id("a_b", "APPROVED", 1)


@pytest.mark.parametrize("field, value", [
    ("status", "MAYBE"),
    ("updated_at", "2026-11-29T08:00:00+08:00"),
    ("updated_at", "2026-11-29T08:00:00"),
    ("version", -1),
    ("currency", "usd"),
    ("borrower_id", ""),
])
def test_contract_violations_are_rejected(field, value):
    with pytest.raises(ValidationError) as err:
        _loan(**{field: value})
    assert err.value.errors()[0]["loc"][0] == field


def test_missing_borrower_is_rejected():
    with pytest.raises(ValidationError):
        LoanImage.model_validate({"loan_id": "L", "status": "APPROVED", "updated_at": "2026-11-29T08:00:00Z",
                                  "version": 1})


def test_notice_ref_forbids_personal_fields():
    with pytest.raises(ValidationError):
        NoticeRef.model_validate({"notification_id": "n", "loan_id": "L", "borrower_id": "B", "status": "APPROVED",
                                  "version": 1, "phone": "+14155550123"})
