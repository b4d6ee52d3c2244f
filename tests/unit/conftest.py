import importlib.util
import uuid
from pathlib import Path

import pytest

from localcloud.lambdas import FunctionCode, LambdaContext

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def load_handler(monkeypatch):
    """Import functions/<name>/app.py as Lambda would, with the environment its template entry gives it."""

    def load(name: str, **env: str):
        defaults = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "BACKUP_REGION": "us-west-2",
                    "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                    "NOTIFICATIONS_TABLE": "notifications", "BORROWERS_TABLE": "borrowers",
                    "DELIVERIES_TABLE": "deliveries", "INBOX_TABLE": "inbox", "REVIEW_CASES_TABLE": "cases",
                    "OPS_ALERTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts",
                    "CRITICAL_OUTBOX_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/critical",
                    "BULK_OUTBOX_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bulk",
                    "PACING_TABLE": "pacing", "SMS_SEND_RATE": "20", "EMAIL_SEND_RATE": "14",
                    "PUSH_SEND_RATE": "50",
                    "NOTIFY_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:notify",
                    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "LoanNotify",
                    "POWERTOOLS_SERVICE_NAME": name}
        for key, value in {**defaults, **env}.items():
            monkeypatch.setenv(key, value)
        spec = importlib.util.spec_from_file_location(f"handler_{name}", ROOT / "functions" / name / "app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def context():
    code = FunctionCode(name="unit-test-function", logical_id="UnitTest", folder=ROOT, handler="app.lambda_handler",
                        memory_mb=256, timeout_s=20)
    return LambdaContext(code, "us-east-1", "123456789012")


@pytest.fixture()
def scratch(cloud):
    """A DynamoDB table of its own (not one of the stack's) on the session's local cloud: (client, name)."""
    client = cloud.client("dynamodb")
    name = f"scratch-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    yield client, name
    client.delete_table(TableName=name)
