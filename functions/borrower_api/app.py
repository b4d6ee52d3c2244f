"""Borrower-facing HTTP API (behind the JWT authorizer): the message center, its read confirmation, preferences."""

import json
import os
from typing import Annotated

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from loan_notify.alerts import SnsAlerts
from loan_notify.borrowers import Borrowers
from loan_notify.center import NotFound, get_notice, list_notices, mark_read, view
from loan_notify.contacts import (
    VerificationError,
    confirm_email,
    start_email_change,
    start_phone_change,
    verify_phone,
)
from loan_notify.deliveries import Deliveries
from loan_notify.errors import BorrowerNotFound
from loan_notify.executions import TaskCallbacks
from loan_notify.ledger import Ledger
from loan_notify.masking import mask_email, mask_phone
from loan_notify.models import ContactChange, Preferences, ReportRequest, VerificationCode
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
_sns = boto3.client("sns")
alerts = SnsAlerts(_sns, os.environ["OPS_ALERTS_TOPIC_ARN"])
_borrowers_table = _dynamodb.Table(os.environ["BORROWERS_TABLE"])
_sesv2 = boto3.client("sesv2")
_secret = boto3.client("secretsmanager").get_secret_value(
    SecretId=os.environ["VERIFY_SECRET_ARN"])["SecretString"].encode() if os.environ.get("VERIFY_SECRET_ARN") else b""
LINK_BASE = os.environ.get("CONTACT_CONFIRM_LINK_BASE", "")
SENDER = os.environ.get("SENDER_EMAIL", "")


def _mail(address: str, subject: str, text: str) -> None:
    _sesv2.send_email(FromEmailAddress=SENDER, Destination={"ToAddresses": [address]},
                      Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}}})
ANSWER_WITHIN_S = int(os.environ.get("REVIEW_ANSWER_WITHIN_SECONDS", "14400"))

NotificationId = Annotated[str, Path(min_length=1, max_length=200)]
MAX_BODY_BYTES = 16 * 1024


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: list[FieldError] = []


class ErrorResponse(BaseModel):
    error: ErrorBody


def _documented(*codes: int, ok: int = 200, model: type[BaseModel] | None = None) -> dict:
    """Declare the answers a route can give: its success, and its errors in the one JSON shape errors have."""
    meaning = {400: "Bad request", 404: "Not found (including another borrower's resource)",
               422: "Invalid input: the fields are named", 429: "Too many wrong codes: locked for a while"}
    success: dict = {"description": "OK" if ok == 200 else "Created"}
    if model is not None:
        success["content"] = {"application/json": {"model": model}}
    return {ok: success} | {code: {"description": meaning[code],
                                   "content": {"application/json": {"model": ErrorResponse}}} for code in codes}


def _me():
    """The caller, from the JWT the authorizer verified: its subject is the borrower id."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    return borrowers.get(str(claims.get("sub", "")))


def _error(status: int, code: str, message: str, fields: list[dict] | None = None) -> Response:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, fields=fields or []))
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body.model_dump())


@app.exception_handler(RequestValidationError)
def _invalid(err: RequestValidationError) -> Response:
    fields = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg") or e.get("type"))}
              for e in err.errors()]
    return _error(422, "invalid_request", "The request does not match the API: see fields", fields)


@app.exception_handler(NotFound)
@app.exception_handler(BorrowerNotFound)
@app.exception_handler(LoanNotYours)
def _not_found(_: Exception) -> Response:
    return _error(404, "not_found", "No such notification")


@app.exception_handler(VerificationError)
def _verification(err: VerificationError) -> Response:
    return _error(429 if err.code == "locked" else 400, err.code, str(err))


@app.exception_handler(ValueError)
def _bad_request(err: ValueError) -> Response:
    field, _, detail = str(err).partition(": ")  # domain errors read "<field>: <what is wrong>"
    fields = [{"field": field, "message": detail}] if detail and " " not in field else []
    return _error(400, "bad_request", str(err), fields)


@app.get("/me/notifications", responses=_documented(400, 404, 422))
def list_my_notifications(limit: Annotated[int, Query(ge=1, le=100)] = 20,
                          page: Annotated[str | None, Query(max_length=1000)] = None) -> dict:
    return list_notices(_me(), ledger=ledger, limit=limit, page_token=page)


@app.get("/me/notifications/<notification_id>", responses=_documented(404, 422))
def get_my_notification(notification_id: NotificationId) -> dict:
    me = _me()
    return view(get_notice(me, notification_id, ledger=ledger), me)


@app.post("/me/notifications/<notification_id>/read", responses=_documented(404, 422))
def read_my_notification(notification_id: NotificationId) -> dict:
    return mark_read(_me(), notification_id, ledger=ledger, deliveries=deliveries, callbacks=callbacks,
                     contacts=borrowers)


@app.get("/me/preferences", responses=_documented(404, model=Preferences))
def get_my_preferences() -> Preferences:
    me = _me()
    return Preferences(channels=me.preferred_channels, language=me.locale, quiet_hours=me.quiet_hours,
                       opt_out_non_critical=me.opt_out_non_critical)


@app.put("/me/preferences", responses=_documented(404, 422, model=Preferences))
def put_my_preferences(preferences: Annotated[Preferences, Body()]) -> Preferences:
    borrowers.set_preferences(_me().borrower_id, preferences)
    return preferences


@app.get("/me/contact", responses=_documented(404))
def get_my_contact() -> dict:
    me = _me()
    return {"phone": mask_phone(me.phone), "phone_verified": me.phone_health.verified,
            "email": mask_email(me.email), "email_verified": me.email_health.verified}


@app.put("/me/contact", responses=_documented(400, 404, 422, 429, ok=202))
def change_my_contact(change: Annotated[ContactChange, Body()]) -> Response[dict]:
    """A new phone number is texted a code, a new email address gets a confirmation link; each is used only once
    verified."""
    me = _me()
    if change.phone is not None:
        started = start_phone_change(me.borrower_id, change.phone, table=_borrowers_table, sms=_sns)
    elif change.email is not None:
        started = start_email_change(me.borrower_id, change.email, table=_borrowers_table, mailer=_mail,
                                     secret=_secret, link_base=LINK_BASE)
    else:
        raise ValueError("phone or email: one of them is required")
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=started)


@app.post("/me/contact/verify", responses=_documented(400, 404, 422, 429))
def verify_my_contact(code: Annotated[VerificationCode, Body()]) -> dict:
    return verify_phone(_me().borrower_id, code.code, table=_borrowers_table)


@app.get("/contact/confirm", responses=_documented(400, 422))
def confirm_my_email(token: Annotated[str, Query(min_length=10, max_length=2000)]) -> dict:
    """The link from the confirmation email (no login: the signed, expiring token is the proof)."""
    return confirm_email(token, table=_borrowers_table, secret=_secret)


@app.post("/me/reports", responses=_documented(404, 422, ok=201))
def report_missing_notice(report: Annotated[ReportRequest, Body()]) -> Response[dict]:
    """ "I was never notified about loan X": a person will look into it; the answer says what happens next."""
    opened = report_not_notified(_me().borrower_id, report.loan_id, ledger=ledger, cases=cases, alerts=alerts,
                                 answer_within_s=ANSWER_WITHIN_S)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=opened)


def openapi_document() -> dict:
    """The OpenAPI document of these routes (make openapi writes it to docs/openapi.json)."""
    return json.loads(app.get_openapi_json_schema(
        title="loan-notify borrower API", version="1.0.0",
        description="The borrower's message center, read confirmations, preferences and missing-notice reports. "
                    "Every route needs a bearer JWT from the platform's identity provider; its subject is the "
                    "borrower id.",
        security_schemes={"borrowerJwt": HTTPBearer(bearerFormat="JWT")}, security=[{"borrowerJwt": []}]))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if len(event.get("body") or "") > MAX_BODY_BYTES:  # every request body here is a few hundred bytes
        return {"statusCode": 400, "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"error": {"code": "too_large", "message": f"bodies are limited to "
                                              f"{MAX_BODY_BYTES} bytes", "fields": [{"field": "body",
                                                                                     "message": "too large"}]}})}
    return app.resolve(event, context)
