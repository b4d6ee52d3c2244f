"""LocalCloud: the real template deployed into moto, in process or behind a server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import email
import email.policy
import functools
import json
import logging
import os
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from localcloud import cpu, patches
from localcloud.deploy import ROOT, translate
from localcloud.lambdas import FunctionCode, Runtime
from localcloud.providers import ProviderSimulator, recipients
from localcloud.queues import QueuePump
from localcloud.streams import StreamPump

ACCOUNT = "123456789012"
# ServedCountries: the template's default (CN, US) and France, whose End User Messaging simulator numbers
# (localcloud.providers.SMS_SIMULATOR_NUMBERS["FR"]) the receipt tests text.
DEFAULT_PARAMETERS = {"SenderEmail": "notices@loan-notify.example", "Environment": "dev", "BackupRegion": "us-west-2",
                      "ServedCountries": "CN,US,FR"}
_CLIENT_CONFIG = Config(account_id_endpoint_mode="disabled", retries={"max_attempts": 2, "mode": "standard"})


class ExecutionTimeout(AssertionError):
    pass


@contextlib.contextmanager
def _quiet_moto_cloudformation() -> Iterator[None]:
    log = logging.getLogger("moto")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Tried to parse .* not supported")
            yield
    finally:
        log.setLevel(level)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _email_content(message: Any) -> dict[str, Any]:
    """Subject and body of a sent email; for a raw (MIME) send also its text part and headers, decoded. `body` is
    the HTML part when there is one, as moto keeps it for a simple send."""
    if not hasattr(message, "raw_data"):
        return {"subject": message.subject, "body": message.body}
    parsed = email.message_from_string(message.raw_data, policy=email.policy.default)
    parts = {p.get_content_type(): p.get_content() for p in parsed.walk() if not p.is_multipart()}
    return {"subject": str(parsed["Subject"]), "body": parts.get("text/html", parts.get("text/plain", "")),
            "text": parts.get("text/plain", ""), "headers": {k: str(v) for k, v in parsed.items()},
            "raw": message.raw_data}


class LocalCloud:
    def __init__(self, *, template: Path = ROOT / "template.yaml", stack_name: str = "loan-notify-local",
                 backup_template: Path | None = ROOT / "backup-region.yaml",
                 region: str = "us-east-1", time_scale: float = 0.0, server: bool = False, port: int | None = None,
                 parameters: dict[str, str] | None = None, echo_logs: bool = False,
                 api_port: int | None = None, senders_first: bool = True) -> None:
        self.template = template
        self.backup_template = backup_template  # deployed to BackupRegion after the stack (None: not deployed)
        self.backup_outputs: dict[str, str] = {}
        self.stack_name = stack_name
        self.region = region
        self.time_scale = time_scale
        self.server = server
        self.port = port if port is not None else (free_port() if server else 0)
        self.parameters = {**DEFAULT_PARAMETERS, **(parameters or {})}
        self.echo_logs = echo_logs
        self.senders_first = senders_first  # the outbox consumers go first at every AWS call (Runtime.gate)
        self.outputs: dict[str, str] = {}
        self.async_errors: list[tuple[str, str]] = []
        self.unsupported: list[str] = []
        self._mock: Any = None
        self._moto_server: Any = None
        self._clients: dict[str, Any] = {}
        self.runtime: Runtime | None = None
        self.providers = ProviderSimulator(time_scale)
        self.api_port = api_port  # None: no local HTTP API (0: any free port)
        self.api: Any = None
        self.pump: StreamPump | None = None
        self.queues: QueuePump | None = None
        self.cpu: int | None = None  # the CPU the process is held to while this runs (localcloud/cpu.py)
        self._holds_cpu = False

    # ------------------------------------------------------------------ lifecycle
    @property
    def endpoint_url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.server else None

    def start(self) -> LocalCloud:
        if not self._holds_cpu:
            self.cpu, self._holds_cpu = cpu.pin(), True  # one interpreter: its threads on one CPU (localcloud/cpu.py)
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": self.region,
                           "AWS_REGION": self.region}.items():
            os.environ[key] = value
        from moto.core.config import default_user_config

        default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
        base_env = {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_DEV": "false",
                    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing"}
        if self.server:
            os.environ["MOTO_PORT"] = str(self.port)  # the Step Functions engine calls localhost:$MOTO_PORT
            base_env["AWS_ENDPOINT_URL"] = self.endpoint_url or ""
        self.runtime = Runtime(region=self.region, account=ACCOUNT, base_env=base_env, echo_logs=self.echo_logs)
        self.pump = StreamPump(self.runtime.invoke, self._send_to_destination, self.time_scale)
        patches.apply(invoke_lambda=self._invoke, on_stream_record=self.pump.on_record,
                      time_scale=self.time_scale, providers=self.providers, pause=self.runtime.pause,
                      gate=self.runtime.gate if self.senders_first else None)
        if self.server:
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per AWS call otherwise
            self._moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
            self._moto_server.start()
        else:
            from moto import mock_aws

            self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
            self._mock.start()
        self.deploy()
        if self.api_port is not None:
            self._start_api()
        # moto creates no HTTP API, so the template's `${BorrowerApi}` stays unresolved: the stack output (as
        # DescribeStacks shows it, to the ops command and the AWS CLI too) is the local API's URL instead.
        self._set_output("BorrowerApiUrl", self.api.url if self.api else "(not served: no api_port)")
        if self.api:
            self._set_output("ReviewConsoleUrl", f"{self.api.url}/console")
        self._point_unsubscribe_links_at_the_api()
        return self

    def _point_unsubscribe_links_at_the_api(self) -> None:
        """SendNotice's BORROWER_API_URL (the one-click unsubscribe links of non-critical email) is the template's
        `${BorrowerApi}` URL, unresolved here: it becomes the local API's URL, or nothing (no List-Unsubscribe)
        when no API is served."""
        assert self.runtime
        try:
            code = self.runtime.function("SendNoticeFunction")
        except KeyError:
            return
        if "BORROWER_API_URL" not in code.environment:
            return
        code.environment["BORROWER_API_URL"] = self.api.url if self.api else ""

    def _set_output(self, key: str, value: str) -> None:
        from moto.cloudformation.models import cloudformation_backends

        for stack in cloudformation_backends[ACCOUNT][self.region].stacks.values():
            if stack.name == self.stack_name and key in stack.output_map:
                output = stack.output_map[key]
                if output is not None:
                    output.value = value
        self.outputs[key] = value

    def _start_api(self) -> None:
        from localcloud.api import Authorizer, LocalApi, routes_from_template
        from localcloud.deploy import load_sam

        sam = load_sam(self.template)
        defaults = {k: str(v.get("Default", "")) for k, v in sam.get("Parameters", {}).items()}
        values = {**defaults, **self.parameters}
        self.api = LocalApi(self, routes_from_template(sam, "BorrowerApi", values), issuer=values["JwtIssuer"],
                            audience=values["JwtAudience"], port=self.api_port or 0)
        self.api.add_authorizer("OpsJwt", Authorizer(values["OpsJwtIssuer"], values["OpsJwtAudience"],
                                                     scopes=(values["OpsScope"],)))
        self.api.start()

    def stop(self) -> None:
        if self.api:
            self.api.stop()
        if self.pump:
            self.pump.stop()
        if self.queues:
            self.queues.stop()
        if self._moto_server:
            self._moto_server.stop()
        if self._mock:
            self._mock.stop()
        patches.undo()
        self._clients.clear()
        if self._holds_cpu:
            cpu.unpin()
            self.cpu, self._holds_cpu = None, False

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ clients
    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url,
                                                  config=_CLIENT_CONFIG)
        return self._clients[service]

    def table(self, output_key: str) -> Any:
        return boto3.resource("dynamodb", region_name=self.region, endpoint_url=self.endpoint_url,
                              config=_CLIENT_CONFIG).Table(self.outputs[output_key])

    # ------------------------------------------------------------------ deploy
    @property
    def backup_region(self) -> str:
        return self.parameters.get("BackupRegion", "")

    def deploy_backup_region(self) -> None:
        """backup-region.yaml into BackupRegion, after the stack (the deploy order of the README): its SES and SMS
        configuration sets publish to a topic there whose subscription is the stack's IngestReceipts."""
        if not self.backup_template or not self.backup_region or self.backup_region == self.region:
            return
        cfn = boto3.client("cloudformation", region_name=self.backup_region, endpoint_url=self.endpoint_url,
                           config=_CLIENT_CONFIG)
        parameters = {"PrimaryStackName": self.stack_name,
                      "ReceiptsFunctionArn": self.outputs["IngestReceiptsFunctionArn"]}
        for shared in ("ServedCountries", "SmsSenderId"):
            if shared in self.parameters:
                parameters[shared] = self.parameters[shared]
        name = f"{self.stack_name}-backup-region"
        with _quiet_moto_cloudformation():
            cfn.create_stack(StackName=name, TemplateBody=self.backup_template.read_text(),
                             Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
            stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise RuntimeError(f"stack {name} ended {stack['StackStatus']}: {stack.get('StackStatusReason')}")
        self.backup_outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def deploy(self) -> None:
        assert self.runtime
        bucket = f"{self.stack_name}-artifacts"
        translated = translate(self.template, bucket, self.region)
        self.unsupported = translated.unsupported
        s3 = self.client("s3")
        s3.create_bucket(Bucket=bucket)
        for key, body in translated.uploads.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        cfn = self.client("cloudformation")
        # moto splits a list parameter's value only when it is passed in, never its Default (`!Join` over a
        # default "CN,US" would join its characters): pass list defaults in explicitly.
        lists = {k: str(v["Default"]) for k, v in translated.template.get("Parameters", {}).items()
                 if (v.get("Type") == "CommaDelimitedList" or str(v.get("Type", "")).startswith("List<"))
                 and "Default" in v}
        parameters = {**lists, **self.parameters}
        with _quiet_moto_cloudformation():  # the skipped resources are in self.unsupported, printed by callers
            cfn.create_stack(StackName=self.stack_name, TemplateBody=json.dumps(translated.template),
                             Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
                             Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
            stack = cfn.describe_stacks(StackName=self.stack_name)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            reason = stack.get("StackStatusReason")
            raise RuntimeError(f"stack {self.stack_name} ended {stack['StackStatus']}: {reason}")
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

        for folder in translated.layer_folders.values():
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))  # moto does not attach layers: the layer goes on the path
        with _quiet_moto_cloudformation():
            resources = cfn.describe_stack_resources(StackName=self.stack_name)["StackResources"]
        functions = translated.template["Resources"]
        lam = self.client("lambda")
        for resource in resources:
            logical_id = resource.get("LogicalResourceId", "")
            is_ours = logical_id in translated.function_folders
            if resource.get("ResourceType") != "AWS::Lambda::Function" or not is_ours:
                continue
            config = lam.get_function_configuration(FunctionName=resource["PhysicalResourceId"])
            self.runtime.register(FunctionCode(
                name=config["FunctionName"], logical_id=logical_id,
                folder=translated.function_folders[logical_id],
                handler=functions[logical_id]["Properties"]["Handler"],
                memory_mb=config.get("MemorySize", 128), timeout_s=config.get("Timeout", 3),
                environment=config.get("Environment", {}).get("Variables", {})))
        self.deploy_backup_region()
        self._attach_receipts()
        # The stack's SQS-fed function is the outbox consumer, which sends on the pacer's clock: it goes first.
        self.queues = QueuePump(functools.partial(self.runtime.invoke, first=True), self.time_scale)
        self.queues.attach(ACCOUNT, self.region)
        sender = self.parameters.get("SenderEmail")
        if sender:  # the deploy prerequisite "a verified SES identity", done here for the local account
            for region in self.regions:
                boto3.client("ses", region_name=region, endpoint_url=self.endpoint_url,
                             config=_CLIENT_CONFIG).verify_email_identity(EmailAddress=sender)

    def _attach_receipts(self) -> None:
        """Route the simulator's receipts the way AWS would: published to SNS topics whose subscriptions (from the
        templates) reach IngestReceipts. SMS events go where the text's configuration set sends them (modelled in
        `localcloud.smsvoice`); SES events to the topic of the region's configuration set event destination
        (moto keeps no event destinations: the stacks' outputs name the topics)."""
        self.providers.email_event_topics = {self.region: self.outputs["EmailEventsTopicArn"]}
        if self.backup_outputs:
            self.providers.email_event_topics[self.backup_region] = self.backup_outputs["ReceiptsTopicArn"]
        self.providers.publish = self._publish

    def _publish(self, topic_arn: str, event: dict[str, Any]) -> None:
        region = topic_arn.split(":")[3]
        sns = boto3.client("sns", region_name=region, endpoint_url=self.endpoint_url, config=_CLIENT_CONFIG) \
            if region != self.region else self.client("sns")
        sns.publish(TopicArn=topic_arn, Message=json.dumps(event))

    def _invoke(self, function: Any, event: Any) -> tuple[str, bool, str]:
        """Every moto-side invocation. One that an SNS topic made (receipts: asynchronous in AWS, retried, then
        the function's dead-letter queue) and that failed is recorded in `async_errors`."""
        assert self.runtime
        payload, is_error, logs = self.runtime.moto_hook(function, event)
        if is_error and '"aws:sns"' in (event if isinstance(event, str) else json.dumps(event, default=str)):
            self.async_errors.append((function.function_name, payload))
        return payload, is_error, logs

    def _send_to_destination(self, arn: str, body: str) -> None:
        if arn.startswith("arn:aws:sqs:"):
            sqs = self.client("sqs")
            url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=body)
        elif arn.startswith("arn:aws:sns:"):
            self.client("sns").publish(TopicArn=arn, Message=body)

    # ------------------------------------------------------------------ waiting and looking
    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until every stream record and receipt is delivered and every notice execution has finished or
        is parked on an open review case (waiting for a person, which no amount of waiting here settles)."""
        assert self.pump
        deadline = time.monotonic() + timeout
        while True:
            self.pump.wait_idle(max(0.1, deadline - time.monotonic()))
            self.providers.wait_idle(max(0.1, deadline - time.monotonic()))
            running = self.running_executions()
            if running:
                parked = self.waiting_on_people()
                running = [arn for arn in running if arn.rsplit(":", 1)[1] not in parked]
            settled = self.providers.pending == 0 and self.runtime is not None and self.runtime.active == 0
            if (not running and settled and all(p.idle() for p in self.pump.pollers)
                    and (self.queues is None or self.queues.idle())):
                return
            if time.monotonic() > deadline:
                detail = f"{running[0]}: {self.last_events(running[0])}" if running else self._unsettled()
                raise ExecutionTimeout(f"{len(running)} executions still RUNNING after {timeout}s; {detail}")
            time.sleep(0.005)

    def _unsettled(self) -> str:
        """What is still busy when no execution runs: what `wait_idle` names when it gives up."""
        assert self.pump
        busy = []
        if self.providers.pending:
            busy.append(f"{self.providers.pending} receipts pending")
        if self.runtime is not None and self.runtime.active:
            busy.append(f"{self.runtime.active} invocations running")
        busy.extend(f"stream mapping {p.describe()} busy" for p in self.pump.pollers if not p.idle())
        if self.queues is not None:
            busy.extend(f"queue {p.describe()} busy" for p in self.queues.pollers if not p.idle())
        return "; ".join(busy) or "nothing busy any more"

    def waiting_on_people(self) -> set[str]:
        """Names of the executions waiting on an open review case (a case names its notification id)."""
        from loan_notify.models import execution_name
        from loan_notify.review import ReviewCases

        return {execution_name(c["notification_id"])
                for c in ReviewCases(self.table("ReviewCasesTableName")).open_cases() if c.get("notification_id")}

    def running_executions(self) -> list[str]:
        """ARNs of RUNNING executions, read from moto's backend (ListExecutions serialises every execution)."""
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        backend = stepfunctions_parser_backends[ACCOUNT][self.region]
        return [e.execution_arn for sm in list(backend.state_machines) for e in list(sm.executions)
                if e.exec_status is None or e.exec_status.value == "RUNNING"]

    def execution_arn(self, name: str) -> str:
        sm = self.outputs["NotifyStateMachineArn"]
        return sm.replace(":stateMachine:", ":execution:") + f":{name}"

    def wait_execution(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        arn = self.execution_arn(name)
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            try:
                described = sfn.describe_execution(executionArn=arn)
                if described["status"] != "RUNNING":
                    return described
            except sfn.exceptions.ExecutionDoesNotExist:
                described = None
            if time.monotonic() > deadline:
                last = self.last_events(arn) if described else "never started"
                raise ExecutionTimeout(f"execution {name} not finished after {timeout}s: {last}")
            time.sleep(0.01)

    def history(self, name_or_arn: str) -> list[dict[str, Any]]:
        arn = name_or_arn if name_or_arn.startswith("arn:") else self.execution_arn(name_or_arn)
        pages = self.client("stepfunctions").get_paginator("get_execution_history").paginate(
            executionArn=arn, maxResults=1000)
        return [event for page in pages for event in page["events"]]

    def last_events(self, arn: str, count: int = 5) -> str:
        try:
            events = self.history(arn)[-count:]
        except Exception as err:  # diagnostics only
            return f"(history unavailable: {err})"
        return json.dumps(events, default=str)[:3000]

    # ------------------------------------------------------------------ provider backends (what was "sent")
    @property
    def regions(self) -> list[str]:
        """The stack's region and its backup region (where the backup providers live)."""
        return list(dict.fromkeys(r for r in (self.region, self.parameters.get("BackupRegion", "")) if r))

    def sms_messages(self) -> list[dict[str, str]]:
        """Every SMS sent: End User Messaging SMS texts (notices) and SNS SMS (the borrower API's codes)."""
        from moto.sns.models import sns_backends

        from localcloud.smsvoice import backend

        texts = [{"message_id": t.message_id, "phone": t.phone, "text": t.text, "region": t.region,
                  "provider": "sms-voice", "configuration_set": t.configuration_set} for t in list(backend.sent)]
        return texts + [{"message_id": mid, "phone": phone, "text": text, "region": region, "provider": "sns"}
                        for region in self.regions
                        for mid, (phone, text) in list(sns_backends[ACCOUNT][region].sms_messages.items())]

    def emails(self) -> list[dict[str, Any]]:
        from moto.ses.models import ses_backends

        return [{"message_id": m.id, "to": recipients(m), "region": region, **_email_content(m)}
                for region in self.regions for m in list(ses_backends[ACCOUNT][region].sent_messages)]

    # ------------------------------------------------------------------ fault injection for tests and the demo
    def moto_table(self, output_key: str) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[ACCOUNT][self.region].get_table(self.outputs[output_key])

    def redeliver_last(self, output_key: str = "LoansTableName", count: int = 1) -> list[dict[str, Any]]:
        """Deliver the table's last `count` stream records again, as a retried shard would."""
        assert self.pump
        table = self.moto_table(output_key)
        records = [r.to_json() for r in table.stream_shard.items[-count:]]
        for record in records:
            self.pump.redeliver(table, record)
        return records
