"""The session's local cloud, shared by the flow tests and the browser tests (one per test process)."""

from __future__ import annotations

import pytest

from localcloud import LocalCloud
from tests.flow.conftest import BORROWERS_SEEN, assert_every_notice_chained, assert_no_personal_data_anywhere


@pytest.fixture(scope="session")
def cloud():
    with LocalCloud(time_scale=0.002, api_port=0) as local:  # 1 simulated second = 2 ms; API on a free port
        yield local
        # After every test: no execution and no log line of the session carries any borrower's personal data.
        local.wait_idle()
        sfn = local.client("stepfunctions")
        names = [e["name"] for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=local.outputs["NotifyStateMachineArn"]) for e in page["executions"]]
        assert_no_personal_data_anywhere(local, BORROWERS_SEEN, names)
        # And every notice any test wrote carries an intact hash chain: every write path of the ledger extends it.
        assert_every_notice_chained(local)
