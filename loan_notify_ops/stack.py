"""Which stack the ops command talks to, and how it finds it.

The endpoint, in this order: `--endpoint-url`; `LOAN_NOTIFY_ENDPOINT_URL`; the state file `make local` writes while
it runs (`.loan-notify-local.json` in the directory it was started from, found from the current directory or any
parent; `LOAN_NOTIFY_LOCAL_STATE` names another file); otherwise AWS itself (your profile and region).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

STATE_FILE = ".loan-notify-local.json"
LOCAL_STACK = "loan-notify-local"
# account-based DynamoDB endpoints off: the regional endpoint serves the same calls, and an emulator answers on it
_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=60,
                 account_id_endpoint_mode="disabled")


_LOADER = botocore.loaders.create_loader()  # service models read once per process, whatever the session


def _session(**kwargs: Any) -> boto3.session.Session:
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core, **kwargs)


class OpsError(Exception):
    """A problem the operator can act on: printed as one line on stderr, exit status 2."""


@dataclass(frozen=True)
class Target:
    stack_name: str
    region: str | None
    endpoint_url: str | None
    found_by: str  # "--endpoint-url", "LOAN_NOTIFY_ENDPOINT_URL", "make local (<file>)", "AWS"


def _state_file() -> Path | None:
    named = os.environ.get("LOAN_NOTIFY_LOCAL_STATE")
    if named:
        return Path(named)
    for folder in (Path.cwd(), *Path.cwd().parents):
        candidate = folder / STATE_FILE
        if candidate.is_file():
            return candidate
    return None


def _running(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def local_state() -> dict[str, Any] | None:
    """What `make local` wrote about itself, if it is still running."""
    path = _state_file()
    if path is None or not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not state.get("endpoint") or not _running(state.get("pid")):
        return None
    return {**state, "path": str(path)}


def discover(stack_name: str | None, region: str | None, endpoint_url: str | None) -> Target:
    if endpoint_url:
        return Target(stack_name or LOCAL_STACK, region, endpoint_url, "--endpoint-url")
    from_env = os.environ.get("LOAN_NOTIFY_ENDPOINT_URL")
    if from_env:
        return Target(stack_name or LOCAL_STACK, region, from_env, "LOAN_NOTIFY_ENDPOINT_URL")
    state = local_state()
    if state and (stack_name is None or stack_name == state.get("stack_name")):
        return Target(state.get("stack_name", LOCAL_STACK), region or state.get("region"), state["endpoint"],
                      f"make local ({state['path']})")
    return Target(stack_name or os.environ.get("LOAN_NOTIFY_STACK") or LOCAL_STACK, region, None, "AWS")


class Stack:
    """The deployed stack's outputs and clients for its services (a real account or the local cloud)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        session = _session(region_name=target.region)
        if target.endpoint_url and session.get_credentials() is None:
            # the local cloud takes any credentials; a newcomer running `make local` has none configured
            session = _session(aws_access_key_id="local", aws_secret_access_key="local",  # noqa: S106
                               region_name=target.region or "us-east-1")
        elif target.endpoint_url and session.region_name is None:
            session = _session(region_name="us-east-1")
        self._session = session
        self.region = session.region_name
        try:
            stacks = self.client("cloudformation").describe_stacks(StackName=target.stack_name)["Stacks"]
        except NoRegionError as err:
            raise OpsError(f"no AWS region for stack {target.stack_name}: pass --region or set AWS_REGION, or start "
                           "`make local` for the local cloud") from err
        except NoCredentialsError as err:
            raise OpsError(f"no AWS credentials for stack {target.stack_name} ({err}); start `make local` or "
                           "set LOAN_NOTIFY_ENDPOINT_URL for the local cloud") from err
        except ClientError as err:
            if "does not exist" in str(err):
                where = target.endpoint_url or f"AWS region {self.region}"
                raise OpsError(f"stack {target.stack_name} not found at {where} (found by {target.found_by})") \
                    from err
            raise OpsError(f"cannot read stack {target.stack_name}: {err}") from err
        except BotoCoreError as err:
            where = target.endpoint_url or "AWS"
            hint = "; is `make local` running?" if target.endpoint_url else ""
            raise OpsError(f"cannot reach {where} (found by {target.found_by}): {err}{hint}") from err
        self.outputs: dict[str, str] = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        self.stack_id: str = stacks[0].get("StackId", "")

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self.target.endpoint_url, config=_CONFIG)

    def table(self, output: str) -> Any:
        return self._session.resource("dynamodb", endpoint_url=self.target.endpoint_url,
                                      config=_CONFIG).Table(self.output(output))

    def output(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError:
            raise OpsError(f"stack {self.target.stack_name} has no output {key}: is it this application's stack?") \
                from None

    def function_name(self, logical_id: str) -> str:
        resources = self.client("cloudformation").describe_stack_resources(
            StackName=self.target.stack_name)["StackResources"]
        for resource in resources:
            if resource.get("LogicalResourceId") == logical_id:
                return str(resource["PhysicalResourceId"])
        raise OpsError(f"stack {self.target.stack_name} has no resource {logical_id}")
