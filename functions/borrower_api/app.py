"""Borrower-facing HTTP API (behind the JWT authorizer): the message center, its read confirmation, preferences."""

import os
from typing import Annotated

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from loan_notify.alerts import SnsAlerts
from loan_notify.borrowers import Borrowers
from loan_notify.center import NotFound, get_notice, list_notices, mark_read, view
from loan_notify.deliveries import Deliveries
from loan_notify.errors import BorrowerNotFound
from loan_notify.executions import TaskCallbacks
from loan_notify.ledger import Ledger
from loan_notify.models import Preferences, ReportRequest
from loan_notify.review import LoanNotYours, ReviewCases, report_not_notified

logger = Logger()
tracer = Tracer()
app = APIGatewayHttpResolver(enable_validation=True)

_dynamodb = boto3.resource("dynamodb")
ledger = Ledger(_dynamodb.Table(os.environ["NOTIFICATIONS_TABLE"]))
borrowers = Borrowers(_dynamodb.Table(os.environ["BORROWERS_TABLE"]))
deliveries = Deliveries(_dynamodb.Table(os.environ["DELIVERIES_TABLE"]))
callbacks = TaskCallbacks(boto3.client("stepfunctions"))
cases = ReviewCases(_dynamodb.Table(os.environ["REVIEW_CASES_TABLE"]))
alerts = SnsAlerts(boto3.client("sns"), os.environ["OPS_ALERTS_TOPIC_ARN"])
ANSWER_WITHIN_S = int(os.environ.get("REVIEW_ANSWER_WITHIN_SECONDS", "14400"))

NotificationId = Annotated[str, Path(min_length=1, max_length=200)]


def _me():
    """The caller, from the JWT the authorizer verified: its subject is the borrower id."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    return borrowers.get(str(claims.get("sub", "")))


def _error(status: int, code: str, message: str) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body={"error": {"code": code, "message": message}})


@app.exception_handler(NotFound)
@app.exception_handler(BorrowerNotFound)
@app.exception_handler(LoanNotYours)
def _not_found(_: Exception) -> Response:
    return _error(404, "not_found", "No such notification")


@app.exception_handler(ValueError)
def _bad_request(err: ValueError) -> Response:
    return _error(400, "bad_request", str(err))


@app.get("/me/notifications")
def list_my_notifications(limit: Annotated[int, Query(ge=1, le=100)] = 20,
                          page: Annotated[str | None, Query(max_length=1000)] = None) -> dict:
    return list_notices(_me(), ledger=ledger, limit=limit, page_token=page)


@app.get("/me/notifications/<notification_id>")
def get_my_notification(notification_id: NotificationId) -> dict:
    me = _me()
    return view(get_notice(me, notification_id, ledger=ledger), me)


@app.post("/me/notifications/<notification_id>/read")
def read_my_notification(notification_id: NotificationId) -> dict:
    return mark_read(_me(), notification_id, ledger=ledger, deliveries=deliveries, callbacks=callbacks,
                     contacts=borrowers)


@app.get("/me/preferences")
def get_my_preferences() -> Preferences:
    me = _me()
    return Preferences(channels=me.preferred_channels, language=me.locale, quiet_hours=me.quiet_hours,
                       opt_out_non_critical=me.opt_out_non_critical)


@app.put("/me/preferences")
def put_my_preferences(preferences: Annotated[Preferences, Body()]) -> Preferences:
    borrowers.set_preferences(_me().borrower_id, preferences)
    return preferences


@app.post("/me/reports")
def report_missing_notice(report: Annotated[ReportRequest, Body()]) -> Response[dict]:
    """ "I was never notified about loan X": a person will look into it; the answer says what happens next."""
    opened = report_not_notified(_me().borrower_id, report.loan_id, ledger=ledger, cases=cases, alerts=alerts,
                                 answer_within_s=ANSWER_WITHIN_S)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=opened)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
