"""Abuse resistance, the parts that need no cloud: the documented limits, the countries-served rule, ops-text
escaping, the edge checks, and the template's fences (throttling, access log, reserved concurrency, tracing, IAM)."""

from __future__ import annotations

import importlib.util
import json
import shlex
from pathlib import Path

import pytest

from loan_notify import limits
from loan_notify.alerts import SnsAlerts, resolve_command, subject_line
from loan_notify.edge import MAX_BODY_BYTES, MAX_JSON_DEPTH, body_bytes, json_depth
from loan_notify.errors import PermanentChannelError
from loan_notify.reach import SERVED_COUNTRIES_DEFAULT, served_countries, sms_destination
from loan_notify.review import alert_message
from loan_notify.safe_text import printable, shell_quote
from localcloud.deploy import load_sam

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_sam(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]


# ------------------------------------------------------------------ 1, 3, 4: the documented defaults
def test_the_limits_are_the_documented_defaults():
    assert (limits.SENDS_PER_BORROWER.count, limits.SENDS_PER_BORROWER.window_s) == (5, 3600)
    assert (limits.SENDS_PER_DESTINATION.count, limits.SENDS_PER_DESTINATION.window_s) == (3, 600)
    assert (limits.DESTINATIONS_PER_BORROWER.count, limits.DESTINATIONS_PER_BORROWER.window_s) == (5, 86400)
    assert limits.DESTINATIONS_PER_BORROWER.distinct
    assert (limits.CODE_CHECKS_PER_BORROWER.count, limits.CODE_CHECKS_PER_BORROWER.window_s) == (10, 3600)
    assert (limits.REPORTS_PER_BORROWER.count, limits.REPORTS_PER_BORROWER.window_s) == (5, 86400)
    readme = (ROOT / "README.md").read_text()
    for limit in limits.ALL:
        assert f"`{limit.name}`" in readme, f"README's Security section does not document {limit.name}"


def test_limits_refuse_to_work_without_a_key():
    with pytest.raises(ValueError):
        limits.Limits(table=None, pepper=b"")


# ------------------------------------------------------------------ 2: countries served
@pytest.mark.parametrize("phone, reason", [
    (None, "no_contact"), ("not a phone", "invalid_phone"), ("+8640012345678", "invalid_phone"),
    ("+19005551234", "premium_rate_number"), ("+18885551234", "toll_free_number"),
    ("+881612345678", "non_geographic_number"), ("+883510012345", "non_geographic_number"),
    ("+33612345678", "country_not_served"), ("+447400123456", "country_not_served"),
    ("+861065529988", "fixed_line_number"),
])
def test_texts_go_only_to_mobiles_in_the_countries_served(phone, reason):
    with pytest.raises(PermanentChannelError) as refused:
        sms_destination(phone, SERVED_COUNTRIES_DEFAULT)
    assert refused.value.reason == reason


def test_served_numbers_are_normalised_and_the_list_is_a_parameter():
    assert sms_destination("+86 139 1234 5678") == "+8613912345678"
    assert sms_destination("+1 202-555-0143") == "+12025550143"
    assert sms_destination("+33612345678", served_countries("FR")) == "+33612345678"
    assert served_countries(None) == served_countries("") == SERVED_COUNTRIES_DEFAULT == {"CN", "US"}
    assert served_countries(" cn , us ") == {"CN", "US"}
    with pytest.raises(ValueError):
        served_countries("CHN")
    parameter = TEMPLATE["Parameters"]["ServedCountries"]
    assert parameter["Type"] == "CommaDelimitedList" and parameter["Default"] == "CN,US"
    for function in ("BorrowerApiFunction", "SendNoticeFunction"):
        variables = RESOURCES[function]["Properties"]["Environment"]["Variables"]
        assert variables["SERVED_COUNTRIES"] == {"Fn::Join": [",", {"Ref": "ServedCountries"}]}


# ------------------------------------------------------------------ 5: ops-facing text
def test_a_suggested_command_holds_any_case_id_as_one_word():
    hostile = "report-$(touch pwned)-`id`;rm -rf ~ 'x'\n"
    command = resolve_command(hostile)
    words = shlex.split(command)
    assert words[5] == printable(hostile) and words[:5] == ["python", "-m", "loan_notify_ops", "cases", "resolve"]
    case = {"case_id": hostile, "loan_id": "L\x1b[2J", "status": "-", "reason": "r", "opened_at": "t",
            "due_at": "t"}
    subject, body = alert_message(case)
    assert "\x1b" not in subject and "\\x1b[2J" in subject
    assert json.loads(body)["resolve_with"] == command


def test_the_ops_command_takes_only_case_ids(capsys):
    from loan_notify_ops.cli import main as ops

    with pytest.raises(SystemExit) as refused:
        ops(["cases", "resolve", "x;$(id)\x1b[2J", "--decision", "closed", "--note", "n", "--by", "me"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "not a case id" in err and "\x1b" not in err


def test_terminal_text_shows_control_characters_as_escapes():
    assert printable("a\x1b[2J\rb\u202ec\x00\\") == "a\\x1b[2J\\rb\\u202ec\\x00\\\\"
    assert printable("line 1\nline 2", keep_newlines=True) == "line 1\nline 2"
    assert printable("贷款 Ada") == "贷款 Ada"  # printable text is left alone
    assert shell_quote("plain-id_1") == "plain-id_1"
    assert len(subject_line("x" * 500)) == 100 and subject_line("贷\x07").isascii()


def test_alerts_publish_escaped_text():
    sent = []

    class Sns:
        def publish(self, **kwargs):
            sent.append(kwargs)

    SnsAlerts(Sns(), "arn:topic").publish("case L\x1b]0;owned\x07", "line\n\x1b[2Jfake")
    assert sent[0]["Subject"] == "case L\\x1b]0;owned\\x07" and sent[0]["Message"] == "line\n\\x1b[2Jfake"


# ------------------------------------------------------------------ 6: the edges
def test_body_limit_counts_bytes_and_depth_is_scanned_without_recursion():
    assert len(body_bytes("贷" * 6000, False)) == 18000 > MAX_BODY_BYTES > 6000
    assert body_bytes("aGk=", True) == b"hi"
    assert json_depth(b'{"a": {"b": [1, "[[[[[[[[[[\\"]]"]}}') == 3
    assert json_depth(b"[" * 100_000) == MAX_JSON_DEPTH + 1  # stops counting at the limit
    assert json_depth(b'{"channels": ["SMS"], "quiet_hours": {"start": "22:00", "end": "07:00"}}') <= MAX_JSON_DEPTH


def test_the_api_refuses_to_start_without_its_secret(monkeypatch):
    monkeypatch.delenv("VERIFY_SECRET_ARN", raising=False)
    for key in ("NOTIFICATIONS_TABLE", "BORROWERS_TABLE", "DELIVERIES_TABLE", "REVIEW_CASES_TABLE", "LIMITS_TABLE"):
        monkeypatch.setenv(key, "-")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    spec = importlib.util.spec_from_file_location("borrower_api_no_secret", ROOT / "functions/borrower_api/app.py")
    module = importlib.util.module_from_spec(spec)
    with pytest.raises(RuntimeError, match="VERIFY_SECRET_ARN"):
        spec.loader.exec_module(module)


# ------------------------------------------------------------------ 7, 8: capacity and tracing
def test_the_borrower_api_is_throttled_logged_without_personal_data_and_fenced():
    api = RESOURCES["BorrowerApi"]["Properties"]
    assert api["DefaultRouteSettings"] == {"ThrottlingRateLimit": {"Ref": "BorrowerApiRateLimit"},
                                           "ThrottlingBurstLimit": {"Ref": "BorrowerApiBurstLimit"}}
    assert TEMPLATE["Parameters"]["BorrowerApiRateLimit"]["Default"] == 50
    assert TEMPLATE["Parameters"]["BorrowerApiBurstLimit"]["Default"] == 100
    log_format = api["AccessLogSettings"]["Format"]
    fields = json.loads(log_format)
    assert {"requestId", "routeKey", "status"} <= set(fields)
    for leak in ("sourceIp", "userAgent", "identity", "path", "queryString", "claims", "header", "$request",
                 "$context.authorizer.principalId"):
        assert leak not in log_format, f"the access log would record {leak}"
    assert api["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["BorrowerApiAccessLogs", "Arn"]}
    assert RESOURCES["BorrowerApiAccessLogs"]["Properties"]["RetentionInDays"] > 0
    function = RESOURCES["BorrowerApiFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"] == {"Ref": "BorrowerApiReservedConcurrency"}
    assert TEMPLATE["Parameters"]["BorrowerApiReservedConcurrency"]["Default"] == 20


@pytest.mark.parametrize("function, folder", [("BorrowerApiFunction", "borrower_api"),
                                              ("ReviewConsoleFunction", "review_console")])
def test_the_tracer_never_records_api_responses(function, folder):
    variables = RESOURCES[function]["Properties"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    source = (ROOT / f"functions/{folder}/app.py").read_text()
    assert "@tracer.capture_lambda_handler(capture_response=False)" in source
    assert "capture_method" not in source  # no method capture that would record a return value


def test_the_limits_table_is_encrypted_on_demand_and_expires_its_counters():
    table = RESOURCES["LimitsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST" and table["SSESpecification"]["SSEEnabled"] is True
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


# ------------------------------------------------------------------ 9: least privilege
# Wildcards AWS requires, each with why. Anything else with a "*" in an action or a resource fails this test.
ALLOWED_WILDCARDS = {
    # task-token calls name no resource: the token scopes them
    ("states:SendTaskSuccess", "*"), ("states:SendTaskFailure", "*"),
    # the notice state machine's executions: their names are the notices' (the review console reads them)
    ("states:DescribeExecution", "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${Name}:*"),
    # CloudWatch Logs delivery for the state machine's logging: these actions take no resource ARN
    *{(action, "*") for action in ("logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                                   "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                                   "logs:DescribeResourcePolicies", "logs:DescribeLogGroups")},
    # End User Messaging SMS: the account's origination identities (numbers, sender ids, pools, their opt-out lists),
    # bought and registered outside the stack, which the service picks from when a call names none; and the backup
    # region's protect configuration, created by backup-region.yaml with an id this stack cannot name
    *{("sms-voice:SendTextMessage", f"arn:${{AWS::Partition}}:sms-voice:{region}:${{AWS::AccountId}}:{kind}/*")
      for region in ("${AWS::Region}", "${BackupRegion}")
      for kind in ("phone-number", "sender-id", "pool", "opt-out-list")},
    ("sms-voice:SendTextMessage",
     "arn:${AWS::Partition}:sms-voice:${BackupRegion}:${AWS::AccountId}:protect-configuration/*"),
    # push to the app's platform endpoints, which the platform registers outside this stack (one account)
    ("sns:Publish", "arn:${AWS::Partition}:sns:*:${AWS::AccountId}:endpoint/*"),
}
# SMS to phone numbers: a publish to a number has no ARN; NotResource every SNS ARN leaves phone numbers only.
ALLOWED_NOT_RESOURCES = {("sns:Publish", "arn:${AWS::Partition}:sns:*:*:*")}
# What SAM attaches for the event sources and tracing the template declares: AWS managed policies.
ALLOWED_SAM_POLICY_TEMPLATES: set[str] = set()


def _text(value):
    """The literal text of a resource (a Sub string, a GetAtt, a plain ARN) for the wildcard check."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    if isinstance(value, dict) and "Fn::If" in value:  # a resource only when a condition holds: what it would be
        return _text(value["Fn::If"][1])
    return json.dumps(value)


def _statements(policies):
    for policy in policies:
        if isinstance(policy, str):
            yield "managed", policy
            continue
        name = next(iter(policy))
        if name != "Statement":
            yield "template", name
            continue
        for statement in policy["Statement"]:
            if "Fn::If" in statement:
                statement = statement["Fn::If"][1]
            yield "statement", statement


def _as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("logical_id", sorted(k for k, v in RESOURCES.items()
                                              if v["Type"] in ("AWS::Serverless::Function",
                                                               "AWS::Serverless::StateMachine")))
def test_no_wildcard_action_or_resource_outside_the_allow_list(logical_id):
    for kind, statement in _statements(RESOURCES[logical_id]["Properties"].get("Policies", [])):
        assert kind != "managed", f"{logical_id}: a managed policy ({statement}) grants more than it uses"
        assert kind != "template" or statement in ALLOWED_SAM_POLICY_TEMPLATES, \
            f"{logical_id}: SAM policy template {statement} expands to wildcards; write the statement"
        if kind != "statement":
            continue
        actions = _as_list(statement["Action"])
        assert statement["Effect"] == "Allow"
        for action in actions:
            assert "*" not in action, f"{logical_id}: wildcard action {action}"
        if "NotResource" in statement:
            for resource in _as_list(statement["NotResource"]):
                assert all((a, _text(resource)) in ALLOWED_NOT_RESOURCES for a in actions), \
                    f"{logical_id}: NotResource {resource} for {actions}"
            continue
        for resource in _as_list(statement["Resource"]):
            text = _text(resource)
            if "*" in text:
                assert all((a, text) in ALLOWED_WILDCARDS for a in actions), \
                    f"{logical_id}: wildcard resource {text} for {actions}"


def test_sns_publish_reaches_only_the_topics_used_and_phone_numbers():
    policies = RESOURCES["BorrowerApiFunction"]["Properties"]["Policies"]
    publishes = [s for kind, s in _statements(policies) if kind == "statement" and "sns:Publish" in s["Action"]]
    assert [s.get("Resource") for s in publishes if "Resource" in s] == [{"Ref": "OpsAlertsTopic"}]
    assert [_text(s["NotResource"]) for s in publishes if "NotResource" in s] == ["arn:${AWS::Partition}:sns:*:*:*"]


def test_ses_is_allowed_for_the_sender_identity_only():
    for function in ("BorrowerApiFunction", "SendNoticeFunction"):
        for kind, statement in _statements(RESOURCES[function]["Properties"]["Policies"]):
            if kind == "statement" and "ses:SendEmail" in statement["Action"]:
                texts = [_text(r) for r in _as_list(statement["Resource"])]
                assert texts and all(t.endswith(("identity/${SenderEmail}", "identity/${Domain}",
                                                 "configuration-set/${EmailConfigurationSet}",
                                                 "configuration-set/${AWS::StackName}-backup")) for t in texts)


class _Transactions:
    """A limits table whose transactions answer what real DynamoDB may: conflicts, a limit, or success."""

    name = "limits"

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = 0
        self.meta = self
        self.client = self

    def transact_write_items(self, TransactItems):  # noqa: N803 - boto3's parameter name
        from botocore.exceptions import ClientError

        self.calls += 1
        reasons = self.answers.pop(0)
        if reasons:
            raise ClientError({"Error": {"Code": "TransactionCanceledException"},
                               "CancellationReasons": [{"Code": r} for r in reasons]}, "TransactWriteItems")


def test_a_transaction_conflict_is_tried_again_and_never_a_server_error():
    conflict = ["TransactionConflict", "None", "None"]
    table = _Transactions([conflict, conflict, []])
    limits.Limits(table, pepper=b"k").take_send("B-1", "sms", "+8613912345678")
    assert table.calls == 3
    busy = _Transactions([conflict] * limits.CONFLICT_TRIES)
    with pytest.raises(limits.LimitExceeded) as refused:
        limits.Limits(busy, pepper=b"k").take_send("B-1", "sms", "+8613912345678")
    assert refused.value.retry_after_s == 1 and refused.value.limits == []
    over = _Transactions([["None", "ConditionalCheckFailed", "None"]])
    with pytest.raises(limits.LimitExceeded) as refused:
        limits.Limits(over, pepper=b"k").take_send("B-1", "sms", "+8613912345678")
    assert refused.value.limits == [limits.SENDS_PER_DESTINATION] and over.calls == 1


# ------------------------------------------------------------------ bodies, mailboxes, notice ids
@pytest.mark.parametrize("method, path, body, content_type, ok", [
    ("PUT", "/me/preferences", '{"channels": []}', "application/json", True),
    ("PUT", "/me/preferences", '{"channels": []}', "Application/JSON; charset=utf-8", True),
    ("PUT", "/me/preferences", '{"channels": []}', "multipart/form-data; boundary=x", False),
    ("PUT", "/me/preferences", '{"channels": []}', "text/plain", False),
    ("PUT", "/me/preferences", None, None, False),  # a PUT always needs its JSON body
    ("POST", "/me/reports", '{"loan_id": "L-1"}', None, False),
    ("POST", "/me/notifications/n-1/read", None, None, True),  # a POST that carries nothing
    ("POST", "/unsubscribe", "List-Unsubscribe=One-Click", "application/x-www-form-urlencoded", True),
    ("GET", "/me/preferences", None, "text/plain", True),
])
def test_only_bodies_labelled_json_reach_the_routes(method, path, body, content_type, ok):
    from loan_notify.edge import declares_json

    event = {"rawPath": path, "body": body, "requestContext": {"http": {"method": method, "path": path}},
             "headers": {"Content-Type": content_type} if content_type else {}}
    assert declares_json(event, form_paths=frozenset({"/unsubscribe"})) is ok


def test_a_json_content_type_reaches_the_resolver_in_its_plain_form():
    from loan_notify.edge import plain_json_content_type

    event = {"headers": {"Content-Type": "Application/JSON; charset=utf-8", "x-other": "1"}}
    assert plain_json_content_type(event)["headers"] == {"x-other": "1", "content-type": "application/json"}
    other = {"headers": {"content-type": "text/plain"}}
    assert plain_json_content_type(other) is other


@pytest.mark.parametrize("address, box", [
    ("Victim+1@Example.com", "victim@example.com"), ("victim@example.com", "victim@example.com"),
    ("+tag@example.com", "+tag@example.com"),  # nothing before the tag: the address is its own mailbox
])
def test_sends_are_counted_per_mailbox(address, box):
    from loan_notify.contacts import mailbox

    assert mailbox(address) == box


def test_another_borrowers_notice_is_refused_on_a_projection_before_the_notice_is_read():
    from loan_notify.center import NotFound, get_notice
    from loan_notify.models import Borrower

    class Spy:
        def __init__(self, items):
            self.items, self.full_reads = items, []

        def owner(self, notification_id):
            item = self.items.get(notification_id)
            return item and {k: item[k] for k in ("borrower_id", "state")}

        def get(self, notification_id):
            self.full_reads.append(notification_id)
            return self.items.get(notification_id)

    ledger = Spy({"n-a": {"notification_id": "n-a", "borrower_id": "B-A", "state": "DELIVERED", "attempts": []}})
    intruder, owner = Borrower(borrower_id="B-B", name="B"), Borrower(borrower_id="B-A", name="A")
    for notification_id in ("n-a", "n-missing"):
        with pytest.raises(NotFound):
            get_notice(intruder, notification_id, ledger=ledger)
    assert ledger.full_reads == []  # the same single small read for someone else's notice and a missing one
    assert get_notice(owner, "n-a", ledger=ledger)["notification_id"] == "n-a" and ledger.full_reads == ["n-a"]
