"""Observability in the template: logs kept for a bounded time, the service-level alarms, and a dashboard that
shows only metrics the code emits."""

import json
import re
from pathlib import Path

import pytest

from localcloud.deploy import load_sam

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_sam(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}
ALARMS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
LAYER_SOURCE = "\n".join(p.read_text() for p in (ROOT / "layers/shared/loan_notify").glob("*.py"))


def _log_group(reference):
    assert set(reference) == {"Ref"}, reference
    group = RESOURCES[reference["Ref"]]
    assert group["Type"] == "AWS::Logs::LogGroup"
    return group


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_logs_to_its_own_group_with_a_retention(logical_id):
    group = _log_group(FUNCTIONS[logical_id]["Properties"]["LoggingConfig"]["LogGroup"])
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_log_groups_are_one_per_function_and_every_one_has_a_retention():
    groups = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Logs::LogGroup"}
    used = [f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in FUNCTIONS.values()]
    assert len(set(used)) == len(FUNCTIONS)
    assert all("RetentionInDays" in g["Properties"] for g in groups.values())


def test_the_state_machine_logs_errors_only_and_never_execution_data():
    logging = RESOURCES["NotifyStateMachine"]["Properties"]["Logging"]
    assert logging["Level"] == "ERROR" and logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    arn = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]
    assert arn == {"Fn::GetAtt": ["NotifyStateMachineLogGroup", "Arn"]}
    assert "RetentionInDays" in RESOURCES["NotifyStateMachineLogGroup"]["Properties"]


@pytest.mark.parametrize(("alarm", "metric", "threshold", "operator"), [
    ("OldestUndeliveredCriticalNoticeAlarm", "OldestUndeliveredCriticalNoticeAge", 900, "GreaterThanThreshold"),
    ("OverdueReviewCasesAlarm", "OverdueReviewCases", 1, "GreaterThanOrEqualToThreshold"),
    ("StreamFailuresAlarm", "ApproximateNumberOfMessagesVisible", 1, "GreaterThanOrEqualToThreshold"),
    ("ProviderErrorRateAlarm", None, 5, "GreaterThanThreshold"),
])
def test_every_service_level_alarm_exists_and_alerts_ops(alarm, metric, threshold, operator):
    props = ALARMS[alarm]["Properties"]
    assert props.get("MetricName") == metric
    assert (props["Threshold"], props["ComparisonOperator"]) == (threshold, operator)
    assert props["AlarmActions"] == [{"Ref": "OpsAlertsTopic"}]


def test_the_provider_error_rate_is_errors_over_calls():
    queries = {q["Id"]: q for q in ALARMS["ProviderErrorRateAlarm"]["Properties"]["Metrics"]}
    assert queries["errors"]["MetricStat"]["Metric"]["MetricName"] == "ProviderError"
    assert queries["calls"]["MetricStat"]["Metric"]["MetricName"] == "ProviderCall"
    assert "errors" in queries["rate"]["Expression"] and queries["rate"]["ReturnData"] is True


def _dashboard():
    body = RESOURCES["OpsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(re.sub(r"\$\{([^}]+)\}", r"\1", body))


def _service_sources():
    """POWERTOOLS_SERVICE_NAME -> the source of that function's handler."""
    sources = {}
    for props in (f["Properties"] for f in FUNCTIONS.values()):
        service = props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        sources[service] = (ROOT / props["CodeUri"] / "app.py").read_text()
    return sources


def _emits(source, name):
    """The handler emits `name`: as a string literal, or as an f-string prefix whose suffix is a value the code
    uses (the outcome names of loan_notify)."""
    if "add_metric" not in source:
        return False
    if f'"{name}"' in source:
        return True
    for prefix in re.findall(r'name=f"([A-Za-z]+_)\{', source):
        suffix = name[len(prefix):]
        if name.startswith(prefix) and (f'"{suffix}"' in LAYER_SOURCE or f"class {suffix}(" in LAYER_SOURCE):
            return True
    return False


def _metrics(widgets):
    for widget in widgets:
        for metric in widget["properties"].get("metrics", []):
            yield widget["properties"]["title"], metric


def test_the_dashboard_shows_only_metrics_the_code_emits():
    sources = _service_sources()
    dashboard = _dashboard()
    shown = 0
    for title, metric in _metrics(dashboard["widgets"]):
        namespace, name, *dimensions = metric[:-1]
        if namespace == "LoanNotify":
            service = dict(zip(dimensions[::2], dimensions[1::2]))["service"]
            assert _emits(sources[service], name), f"{title}: {name} is emitted by no {service} code"
            shown += 1
        else:
            assert namespace in {"AWS/SQS", "AWS/States"}, metric
    assert shown >= 15
    for alarm in ALARMS.values():  # the alarms watch emitted metrics too
        props = alarm["Properties"]
        stats = [q["MetricStat"]["Metric"] for q in props.get("Metrics", []) if "MetricStat" in q] or [props]
        for stat in stats:
            if stat["Namespace"] == "LoanNotify":
                service = {d["Name"]: d["Value"] for d in stat["Dimensions"]}["service"]
                assert _emits(sources[service], stat["MetricName"]), stat["MetricName"]


def test_the_dashboard_covers_the_service_levels_and_lists_every_alarm():
    dashboard = _dashboard()
    names = {metric[1] for _, metric in _metrics(dashboard["widgets"])}
    assert {"NoticeStarted", "DeliveredSms", "DeliveredEmail", "DeliveredPush", "DeliveredInbox", "SendFallback",
            "ReceiptDeadlinePassed", "OpenReviewCases", "OverdueReviewCases", "ProviderThrottled",
            "ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage",
            "OldestUndeliveredCriticalNoticeAge"} <= names
    queues = {metric[3] for _, metric in _metrics(dashboard["widgets"]) if metric[0] == "AWS/SQS"}
    assert {"OutboxCriticalQueue.QueueName", "OutboxBulkQueue.QueueName", "StreamFailureQueue.QueueName"} <= queues
    (alarm_widget,) = [w for w in dashboard["widgets"] if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(f"{a}.Arn" for a in ALARMS)


def test_the_evidence_archive_is_locked_in_compliance_mode_for_the_retention_parameter():
    props = RESOURCES["EvidenceArchiveBucket"]["Properties"]
    assert props["ObjectLockEnabled"] is True and props["VersioningConfiguration"] == {"Status": "Enabled"}
    rule = props["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert rule == {"Mode": "COMPLIANCE", "Days": {"Ref": "EvidenceRetentionDays"}}
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
