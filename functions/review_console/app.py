"""Review console: the page (HTML, CSS, JavaScript modules, served here with a CSP) and its JSON routes.

The JSON routes sit behind the HTTP API's ops JWT authorizer (ops issuer and audience, and the ops scope); this
function checks the scope again and takes the reviewer's name from the token's subject. The static routes carry
no data and need no token: the page signs in and sends the token with each JSON call.
"""

import gc

gc.disable()  # the cold start: loading modules makes no garbage, yet collections ran all through it (see the end)

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field, ValidationError

from loan_notify.borrowers import Borrowers
from loan_notify.console import Category, ConsoleDecision, case_view, decide, queue, take
from loan_notify.edge import declares_json, plain_json_content_type
from loan_notify.errors import BorrowerRecordInvalid, record_fault
from loan_notify.evidence import export
from loan_notify.executions import StepFunctionsStarter, TaskCallbacks
from loan_notify.ledger import Ledger
from loan_notify.review import CaseNotOpen, CaseTaken, DecisionConflict, ReviewCases

logger = Logger()
tracer = Tracer()
app = APIGatewayHttpResolver(enable_validation=True)

OPS_SCOPE = os.environ["OPS_SCOPE"]
_dynamodb = boto3.resource("dynamodb")
cases = ReviewCases(_dynamodb.Table(os.environ["REVIEW_CASES_TABLE"]))
ledger = Ledger(_dynamodb.Table(os.environ["NOTIFICATIONS_TABLE"]))
borrowers = Borrowers(_dynamodb.Table(os.environ["BORROWERS_TABLE"]))
_sfn = boto3.client("stepfunctions")
callbacks = TaskCallbacks(_sfn)
executions = StepFunctionsStarter(_sfn, os.environ["NOTIFY_STATE_MACHINE_ARN"])

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
IMMUTABLE = "public, max-age=31536000, immutable"  # an asset asked for by its content hash never changes


class Asset:
    def __init__(self, name: str, body: str, content_type: str) -> None:
        self.name = name
        self.body = body
        self.content_type = content_type
        self.version = hashlib.sha256(body.encode()).hexdigest()[:16]


def _load_assets(folder: Path) -> dict[str, Asset]:
    """Read the page once per cold start. Each file's references to the files before it get `?v=<content hash>`,
    so every asset but the page itself can be cached for good, and a deploy changes the names it is asked by."""
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
             ".html": "text/html; charset=utf-8"}
    assets: dict[str, Asset] = {}
    for name in ("i18n.js", "api.js", "app.css", "app.js", "index.html"):  # dependencies first
        body = (folder / name).read_text(encoding="utf-8")
        for earlier in assets.values():
            body = re.sub(rf"""(["'](?:\./|/console/){re.escape(earlier.name)})(["'])""",
                          rf"\1?v={earlier.version}\2", body)
        assets[name] = Asset(name, body, types[Path(name).suffix])
    return assets


ASSETS = _load_assets(Path(__file__).parent / "static")


def _secure_headers(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    response = next_middleware(app)
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    response.headers.setdefault("Cache-Control", "no-store")  # JSON answers: never cached
    return response


app.use(middlewares=[_secure_headers])


def _error(status: int, code: str, message: str, **extra: object) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body={"error": {"code": code, "message": message, **extra}})


def _reviewer() -> str:
    """The caller's name (the token's subject), once the ops scope is checked again: the authorizer should have
    refused a token without it, and a decision must never rest on a route's configuration alone."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    scopes = f"{claims.get('scope', '')} {claims.get('scp', '')}".replace("[", " ").replace("]", " ").replace(",", " ")
    if OPS_SCOPE not in scopes.split() or not claims.get("sub"):
        raise PermissionError("this token does not carry the ops scope")
    return str(claims["sub"])


@app.exception_handler(PermissionError)
def _forbidden(err: PermissionError) -> Response:
    return _error(403, "forbidden", str(err))


@app.exception_handler(CaseTaken)
def _taken(err: CaseTaken) -> Response:
    return _error(409, "taken", str(err), assignee=err.assignee)


@app.exception_handler(DecisionConflict)
def _conflict(err: DecisionConflict) -> Response:
    return _error(409, "conflict", str(err))


@app.exception_handler(CaseNotOpen)
def _not_open(err: CaseNotOpen) -> Response:
    return _error(404 if "does not exist" in str(err) else 409, "not_open", str(err))


@app.exception_handler(RequestValidationError)
def _invalid(err: RequestValidationError) -> Response:
    fields = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg") or e.get("type"))}
              for e in err.errors()]
    return _error(422, "invalid_request", "The request does not match the API: see fields", fields=fields)


@app.exception_handler(BorrowerRecordInvalid)
@app.exception_handler(ValidationError)
def _stored_record_invalid(err: ValidationError | BorrowerRecordInvalid) -> Response:
    """A record read from a table that does not fit its model (as in the borrower API): our fault, a 500 for the
    5xx alarm, logged by field and error kind and never echoed to the reviewer (its values may be personal data)."""
    logger.error("stored record does not fit its model", extra={"errors": record_fault(err)})
    return _error(500, "internal_error", "A stored record does not fit its model; it is logged")


@app.exception_handler(ValueError)
def _bad_request(err: ValueError) -> Response:
    return _error(400, "bad_request", str(err))


class TakeRequest(BaseModel):
    case_id: str = Field(min_length=1, max_length=300)


CaseId = Annotated[str, Query(min_length=1, max_length=300)]
LoanId = Annotated[str, Query(min_length=1, max_length=128)]


@app.get("/console/api/me")
def me() -> dict:
    return {"reviewer": _reviewer()}


@app.get("/console/api/cases")
def list_cases(category: Annotated[Category | None, Query()] = None,
               loan: Annotated[str | None, Query(max_length=128)] = None) -> dict:
    _reviewer()
    return queue(cases=cases, category_filter=category.value if category else None, loan=loan)


@app.get("/console/api/case")
def get_case(case_id: CaseId) -> dict:
    _reviewer()
    return case_view(case_id, cases=cases, ledger=ledger, borrowers=borrowers)


@app.post("/console/api/case/take")
def take_case(request: Annotated[TakeRequest, Body()]) -> dict:
    return take(request.case_id, by=_reviewer(), cases=cases)


@app.post("/console/api/case/decision")
def decide_case(request: Annotated[ConsoleDecision, Body()]) -> dict:
    by = _reviewer()
    result = decide(request, by=by, cases=cases, ledger=ledger, contacts=borrowers, callbacks=callbacks,
                    executions=executions)
    logger.info("case decided", extra={"case_id": result["case_id"], "decision": result["decision"], "by": by,
                                       "outcome": result["outcome"]})
    return result


@app.get("/console/api/evidence")
def evidence(loan_id: LoanId) -> Response[dict]:
    _reviewer()
    exported = export(loan_id, ledger=ledger, cases=cases)
    filename = re.sub(r"[^A-Za-z0-9_-]", "_", loan_id)[:60]
    return Response(status_code=200 if exported["notices"] else 404, content_type=content_types.APPLICATION_JSON,
                    body=exported, headers={"Content-Disposition": f'attachment; filename="evidence-{filename}.json"'})


def _asset(name: str) -> Response[str]:
    asset = ASSETS.get(name)
    if asset is None:
        return Response(status_code=404, content_type=content_types.TEXT_PLAIN, body="Not found")
    etag = f'"{asset.version}"'
    asked = (app.current_event.query_string_parameters or {}).get("v")
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE if asked == asset.version else "no-cache"}
    if app.current_event.headers.get("if-none-match") == etag:
        return Response(status_code=304, body="", headers=headers)
    return Response(status_code=200, content_type=asset.content_type, body=asset.body, headers=headers)


@app.get("/console")
def page() -> Response[str]:
    return _asset("index.html")


@app.get("/console/<name>")
def static_file(name: str) -> Response[str]:
    return _asset(name)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)  # cases, timelines and evidence: names, amounts, notes
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if not declares_json(event):
        message = "request bodies are JSON: send Content-Type: application/json"
        return {"statusCode": 415, "headers": {"Content-Type": "application/json", "Cache-Control": "no-store",
                                               **SECURITY_HEADERS},
                "body": json.dumps({"error": {"code": "unsupported_media_type", "message": message}})}
    return app.resolve(plain_json_content_type(event), context)

# What the cold start loaded lives as long as this instance: later collections skip it, and collecting resumes.
gc.freeze()
gc.enable()
