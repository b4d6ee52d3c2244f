"""SMS through AWS End User Messaging SMS on a default deploy: a receipt for every text through the configuration
set's event destination, and only the countries served (the protect configuration of ServedCountries)."""

import pytest

from localcloud.providers import SMS_SIMULATOR_NUMBERS
from localcloud.smsvoice import backend
from tests.flow.conftest import executions_for, receipts_of, unique

pytestmark = pytest.mark.flow


def texts_to(phone: str):
    return [t for t in list(backend.sent) if t.phone == phone]


def test_a_default_deploy_confirms_every_sms_by_its_configuration_set_receipt(cloud, platform):
    # GIVEN the stack deployed with its default parameters (nothing about SMS receipts set)
    borrower = platform.borrower()
    loan_id = unique("L")
    # WHEN a notice goes out by SMS
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    # THEN the text named the stack's configuration set and protect configuration
    (text,) = texts_to(borrower["phone"])
    assert text.configuration_set == cloud.outputs["SmsConfigurationSetName"]
    assert text.protect_configuration_id and text.country == "CN"
    # AND its TEXT_DELIVERED event came back through the configuration set's SNS destination and confirmed it
    # (TEXT_SUCCESSFUL, not among the destination's event types, never reached the receipts function)
    (notice,) = platform.notices(loan_id)
    (attempt,) = notice["attempts"]
    assert attempt["provider"] == "sms-voice@us-east-1" and attempt["message_id"] == text.message_id
    assert [(r["source"], r["status"]) for r in receipts_of(attempt)] == [("sms-voice", "DELIVERED")]
    assert list(attempt["receipts"]) == ["sms-voice:TEXT_DELIVERED"]
    assert notice["state"] == "DELIVERED"
    (execution,) = executions_for(cloud, loan_id)
    assert execution["status"] == "SUCCEEDED"


def test_a_number_in_a_country_not_served_is_refused_and_the_notice_takes_its_next_channel(cloud, platform):
    # GIVEN a borrower whose phone is in Australia (the End User Messaging success simulator number there), while the
    # local stack serves CN, US and FR
    borrower = platform.borrower(phone=SMS_SIMULATOR_NUMBERS["AU"][0])
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    # THEN the text was refused before it left (the sender checks the countries served; in AWS the protect
    # configuration refuses it too, see tests/unit/test_smsvoice_model.py): nothing was sent there
    assert texts_to(borrower["phone"]) == []
    (notice,) = platform.notices(loan_id)
    assert [(a["channel"], a["result"], a.get("error")) for a in notice["attempts"]] == [
        ("SMS", "FAILED_PERMANENT", "country_not_served"), ("EMAIL", "SENT", None)]
    assert notice["state"] == "DELIVERED"


def test_the_backup_region_sms_is_confirmed_through_its_own_configuration_set(cloud, platform, providers):
    # GIVEN End User Messaging SMS is down in the stack's region
    providers.down("sms-voice", cloud.region)
    borrower = platform.borrower()
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "OVERDUE", 1, amount=120, currency="USD")
    cloud.wait_idle()
    # THEN the backup region sent it through backup-region.yaml's configuration set, and its receipt confirmed it
    (text,) = texts_to(borrower["phone"])
    assert (text.region, text.configuration_set) == ("us-west-2", cloud.backup_outputs["SmsConfigurationSetName"])
    (notice,) = platform.notices(loan_id)
    backup = notice["attempts"][-1]
    assert (backup["provider"], backup["delivery_status"]) == ("sms-voice@us-west-2", "DELIVERED")
    assert notice["state"] == "DELIVERED" and platform.emails_to(borrower["email"]) == []
