"""The local cloud for people: the outbox of what the simulated providers sent finishes a contact change."""

import json
import re
from urllib.parse import quote

import pytest

from tests.flow.conftest import BORROWERS_SEEN, mobile, ops_run, unique
from tests.flow.test_borrower_api_http import http

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("no_make_local")]  # the in-process cloud


def outbox(*argv):
    code, out, err = ops_run("local", "outbox", *argv)
    assert code == 0, err
    return out


def test_borrower_api_url_output_resolves_to_the_local_api(cloud):
    stack = cloud.client("cloudformation").describe_stacks(StackName=cloud.stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["BorrowerApiUrl"] == cloud.api.url and "${" not in json.dumps(outputs)


def test_a_phone_and_an_email_change_finish_with_the_code_and_link_read_from_the_outbox(cloud, platform):
    # GIVEN a borrower changing both contacts through the app
    borrower = platform.borrower()
    new_phone, new_email = mobile(), f"{unique('grace')}@example.com"
    BORROWERS_SEEN.append({**borrower, "phone": new_phone, "email": new_email})
    token = cloud.api.issue_token(borrower["borrower_id"])
    assert http(cloud, "PUT", "/me/contact", token, {"phone": new_phone})[0] == 202
    assert http(cloud, "PUT", "/me/contact", token, {"email": new_email})[0] == 202
    # WHEN a person reads the outbox, as text and as JSON
    text = outbox("--to", new_phone)
    assert text.startswith(f"SMS to {new_phone}") and "verification code" in text
    (sms,) = json.loads(outbox("--to", new_phone, "--json"))
    (mail,) = json.loads(outbox("--to", new_email, "--json"))
    assert (sms["channel"], mail["channel"]) == ("SMS", "EMAIL")
    # THEN the code from the text verifies the phone and the link from the email confirms the address
    code = re.search(r"\b(\d{6})\b", sms["text"]).group(1)
    assert http(cloud, "POST", "/me/contact/verify", token, {"code": code}) == (200, {"verified": "phone"})
    link_token = re.search(r"token=([A-Za-z0-9_\-.]+)", mail["text"]).group(1)
    assert http(cloud, "GET", f"/contact/confirm?token={quote(link_token)}") == (200, {"verified": "email"})
    saved = platform.borrowers.get_item(Key={"borrower_id": borrower["borrower_id"]})["Item"]
    assert (saved["phone"], saved["email"]) == (new_phone, new_email)


def test_the_readme_lists_exactly_the_resources_the_deploy_reports_as_not_created(cloud):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- uncreated:begin -->\n")[1].split("<!-- /uncreated")[0].split("<!-- uncreated:end")[0]
    listed = [line.strip()[3:-1] for line in block.strip().splitlines()]
    assert listed == cloud.unsupported, "regenerate the README's list with: python -m localcloud.report --uncreated"
