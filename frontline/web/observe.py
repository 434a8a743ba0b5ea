"""The observation form (``/observe/<token>``) and the acknowledge page (``/ack/<token>``).

Both are server-rendered and work without JavaScript.

**Who is who.** The path token is a personal signed link (:mod:`frontline.core.links`, purpose
``observe`` bound to ``Employee.id``, valid ``policy.observations.link_valid_days``). A forged,
tampered, expired or wrong-purpose token, or one for a person who left, gets 403 and nothing is stored.

**CSRF.** There is no cookie or ambient credential: the secret is the token in the URL, which a
cross-site attacker cannot know, so a forged cross-site POST cannot name a valid link. On top of
that, each rendered form carries a signed nonce bound to the same person (purpose ``observe-form``,
24 h); a POST whose nonce is missing, forged, or minted for someone else's link is refused with 403,
so a form page cannot be replayed against another person's link. The form also carries a fresh
``client_request_id``, which makes a double click or a browser re-POST store the observation once.

**Never change state on GET.** ``GET /ack/<token>`` only shows the observation and a form;
``POST`` records the decision (mail scanners prefetch links).

Request bodies on these paths (and ``/api/observations``, the survey and the digest links) are limited to :data:`MAX_BODY_BYTES`
by :class:`BodySizeLimit` (413).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlmodel import Session

from frontline.core import clock
from frontline.core.links import DAY, read_token
from frontline.core.policy import Policy
from frontline.core.security import InvalidToken, sign, verify
from frontline.core.templating import render_html
from frontline.observations.acknowledgement import AckTarget, ack_link_target, set_ack_state
from frontline.observations.contacts import ContactsIn, ContactsRefused, contacts_on, record_contacts
from frontline.observations.drafts import close_draft, open_draft, open_drafts
from frontline.observations.intake import (
    ObservationConflict,
    RateLimited,
    department_names,
    submit,
    suggested_department,
)
from frontline.observations.policy import current_policy
from frontline.observations.rotators import active_employee, current_rotation, recent_observations
from frontline.observations.vocabulary import ACK_STATE_LABELS, ACK_STATES, category_label
from models import Employee, ObservationDraft, get_engine, session_scope

router = APIRouter(include_in_schema=False)

MAX_BODY_BYTES = 64 * 1024
LIMITED_PREFIXES = (
    "/observe/",
    "/ack/",
    "/api/observations",
    "/survey/",
    "/digest/",
    "/pairing/",
    "/request/",
)  # every token-link form
FORM_PURPOSE = "observe-form"
ACK_FORM_PURPOSE = "ack-form"
FORM_SECONDS = 24 * 3600

LABELS = {
    "text": "What happened?",
    "impact": "Customer impact",
    "customer_count": "How many customers mentioned it today?",
    "product_area": "Product area",
    "category": "Category",
    "target_department": "Which department should hear it?",
    "suggestion": "Your suggestion (optional)",
    "urgent": "Urgent",
    "client_request_id": "Form id",
    "nonce": "Form",
    "draft": "Draft from your ticket",
}
IMPACTS = [
    (1, "minor"),
    (2, "annoying"),
    (3, "blocks a task"),
    (4, "costs money or trust"),
    (5, "severe / many people"),
]


class BodySizeLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` on the observation paths with 413,
    whether announced by Content-Length or streamed in chunks."""

    def __init__(
        self,
        app,
        max_bytes: int = MAX_BODY_BYTES,
        prefixes: tuple[str, ...] = LIMITED_PREFIXES,
        exclude: tuple[str, ...] = (),
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.prefixes = prefixes
        self.exclude = exclude

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] != "http"
            or not scope["path"].startswith(self.prefixes)
            or (self.exclude and scope["path"].startswith(self.exclude))
        ):
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    return await self._refuse(scope, send)
        received = 0
        started = too_large = False

        async def limited_receive():
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _TooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            if too_large and not started:
                return  # the app's answer to a body it could not read (FastAPI's form parser: 400) becomes a 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            pass
        if too_large and not started:
            await self._refuse(scope, send)

    async def _refuse(self, scope, send):
        limit = (
            f"{self.max_bytes // (1024 * 1024)} MB" if self.max_bytes >= 1024 * 1024 else f"{self.max_bytes // 1024} KB"
        )
        message = f"request body too large: at most {limit}"
        if scope["path"].startswith("/api/"):
            body, kind = f'{{"detail":"{message}"}}'.encode(), b"application/json"
        else:  # a person at a form: a page that says what happened
            body = render_html("web/observe_error.html", heading="Too much text", message=message).encode()
            kind = b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", kind),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


# ------------------------------------------------------------------------------------ helpers


def _page(name: str, status: int = 200, headers: dict[str, str] | None = None, **ctx: Any) -> HTMLResponse:
    # security headers (CSP, no framing, no-store, no referrer) come from frontline.web.middleware
    return HTMLResponse(render_html(name, **ctx), status_code=status, headers=headers)


def _denied(message: str, heading: str = "This link does not work") -> HTMLResponse:
    return _page("web/observe_error.html", 403, heading=heading, message=message)


def _rotator_from_token(session: Session, token: str, policy: Policy) -> Employee:
    payload = read_token("observe", token, max_age_seconds=policy.observations.link_valid_days * DAY)
    if not isinstance(payload, dict) or not isinstance(payload.get("e"), int):
        raise InvalidToken("this link is not valid")
    employee = active_employee(session, payload["e"])
    if employee is None:
        raise InvalidToken("this link belongs to nobody who can submit observations")
    return employee


async def _form_fields(request: Request) -> dict[str, str]:
    """The url-encoded form (single values). Parsed here so the body limit and charset are ours. A
    dependency: the body is read in the event loop, and the routes are plain ``def`` (FastAPI runs them in
    its thread pool), so their database work never stalls the other requests."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"__invalid__": "the form was not sent as UTF-8"}
    try:
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=50)
    except ValueError:
        return {"__invalid__": "the form had too many fields"}
    return {k: v[-1] for k, v in fields.items()}


def _form_context(session: Session, employee: Employee, policy: Policy, **extra: Any) -> dict[str, Any]:
    names = department_names(session)
    suggestions = [(a, suggested_department(a, policy, names)) for a in policy.observations.product_areas]
    ctx = {
        "employee": employee,
        "rotation": current_rotation(session, employee.id) if employee.id is not None else None,
        "areas": policy.observations.product_areas,
        "categories": [(c, category_label(c)) for c in policy.observations.categories],
        "departments": names,
        "suggestions": [(a, d) for a, d in suggestions if d],
        "impacts": IMPACTS,
        "labels": LABELS,
        "max_text": policy.observations.max_text_chars,
        "max_count": policy.observations.max_customer_count,
        "sla_hours": policy.observations.escalation_sla_hours,
        "nonce": sign(FORM_PURPOSE, {"e": employee.id}),
        "client_request_id": f"web-{uuid.uuid4().hex}",
        "recent": recent_observations(session, employee.id) if employee.id is not None else [],
        "state_labels": ACK_STATE_LABELS,
        "values": {
            "text": "",
            "impact": "",
            "customer_count": "1",
            "product_area": "",
            "category": "",
            "target_department": "",
            "suggestion": "",
            "urgent": False,
        },
        "errors": {},
        "saved": None,
        "saved_department": None,
        "redaction_note": None,
        "today": clock.today(),
        "contacts_today": contacts_on(session, employee.id, clock.today()) if employee.id is not None else None,
        "contacts_saved": None,
        "contacts_errors": {},
        "contacts_values": {},
        "drafts": open_drafts(session, employee.id) if employee.id is not None else [],
        "draft": None,
        "draft_redaction_note": None,
        "draft_discarded": None,
    }
    ctx.update(extra)
    draft = ctx["draft"]
    if isinstance(draft, ObservationDraft):
        ctx["draft_redaction_note"] = redaction_note(draft.redactions)
    return ctx


@dataclass
class _FormPage:
    """The form page of one person's link, shown again with what they typed."""

    session: Session
    employee: Employee
    policy: Policy
    action: str
    values: dict[str, Any]
    draft: ObservationDraft | None = None  # the helpdesk draft the form was opened from

    def again(
        self, status: int, errors: dict[str, str], headers: dict[str, str] | None = None, **extra: Any
    ) -> HTMLResponse:
        extra.setdefault("draft", self.draft)
        ctx = _form_context(
            self.session, self.employee, self.policy, action=self.action, values=self.values, errors=errors, **extra
        )
        return _page("web/observe.html", status, headers=headers, **ctx)


REDACTION_NAMES = {
    "email": "email address",
    "phone": "phone number",
    "card": "card number",
    "iban": "IBAN",
    "ssn": "social security number",
    "ip": "IP address",
}


def redaction_note(counts: dict[str, int]) -> str | None:
    parts = [
        f"{n} {REDACTION_NAMES.get(k, k)}{'es' if n > 1 and REDACTION_NAMES.get(k, k).endswith('ss') else ('s' if n > 1 else '')}"
        for k, n in sorted(counts.items())
    ]
    return ", ".join(parts) or None


# ------------------------------------------------------------------------------------ form

_NOT_AN_OPEN_DRAFT = {"draft": "this draft is not one of your open drafts (sent or discarded already?)"}


@router.get("/observe/{token}", response_class=HTMLResponse)
def observe_form(token: str, request: Request) -> HTMLResponse:
    policy = current_policy()
    with session_scope(get_engine()) as session:
        try:
            employee = _rotator_from_token(session, token, policy)
        except InvalidToken as exc:
            return _denied(str(exc))
        page = _FormPage(session, employee, policy, request.url.path, _values({}))
        wanted = request.query_params.get("draft")
        if wanted is None:
            return page.again(200, {})
        draft = open_draft(session, employee.id or 0, int(wanted)) if wanted.isdigit() and len(wanted) < 12 else None
        if draft is None:
            return page.again(404, _NOT_AN_OPEN_DRAFT)
        page.values.update(text=draft.text, product_area=draft.product_area or "")
        page.draft = draft
        return page.again(200, {})


@router.post("/observe/{token}/drafts/{draft_id}/discard", response_class=HTMLResponse)
def draft_discard(
    token: str, draft_id: int, request: Request, form: dict[str, str] = Depends(_form_fields)
) -> HTMLResponse:
    """Discard one of the rotator's helpdesk drafts (it is kept, marked discarded, and never shown again)."""
    policy = current_policy()
    with session_scope(get_engine()) as session:
        try:
            employee = _rotator_from_token(session, token, policy)
        except InvalidToken as exc:
            return _denied(str(exc))
        action = request.url.path.split("/drafts/")[0]
        form_page = _FormPage(session, employee, policy, action, _values({}))
        refused = _nonce_refusal(form, employee, form_page)
        if refused is not None:
            return refused
        draft = open_draft(session, employee.id or 0, draft_id)
        if draft is None:
            return form_page.again(404, _NOT_AN_OPEN_DRAFT)
        close_draft(session, draft, employee, None)
        return form_page.again(200, {}, draft_discarded=draft)


@router.post("/observe/{token}", response_class=HTMLResponse)
def observe_submit(token: str, request: Request, form: dict[str, str] = Depends(_form_fields)) -> HTMLResponse:
    policy = current_policy()
    with session_scope(get_engine()) as session:
        try:
            employee = _rotator_from_token(session, token, policy)
        except InvalidToken as exc:
            return _denied(str(exc))
        form_page = _FormPage(session, employee, policy, request.url.path, _values(form))
        refused = _nonce_refusal(form, employee, form_page)
        if refused is not None:
            return refused
        draft_id = form.get("draft_id", "")
        if draft_id.isdigit() and len(draft_id) < 12:
            form_page.draft = open_draft(session, employee.id or 0, int(draft_id))
        if "__invalid__" in form:
            return form_page.again(400, {"text": form["__invalid__"]})
        return _store(form, form_page)


@router.post("/observe/{token}/contacts", response_class=HTMLResponse)
def contacts_submit(token: str, request: Request, form: dict[str, str] = Depends(_form_fields)) -> HTMLResponse:
    """The observation page's "contacts handled" form: one number for a day (today by default), optionally
    split by product area; recording the same day again replaces the number."""
    policy = current_policy()
    with session_scope(get_engine()) as session:
        try:
            employee = _rotator_from_token(session, token, policy)
        except InvalidToken as exc:
            return _denied(str(exc))
        action = request.url.path.removesuffix("/contacts")
        form_page = _FormPage(session, employee, policy, action, _values({}))
        refused = _nonce_refusal(form, employee, form_page)
        if refused is not None:
            return refused
        values = {k: v for k, v in form.items() if k == "contacts" or k == "day" or k.startswith("area:")}
        try:
            entry = ContactsIn(
                day=form.get("day") or clock.today().isoformat(),
                contacts=form.get("contacts", "").strip() or -1,
                by_area={
                    k.removeprefix("area:"): int(v) for k, v in values.items() if k.startswith("area:") and v.strip()
                },
            )
            row = record_contacts(
                session,
                employee,
                entry,
                policy=policy,
                source="web",
                recorded_by=employee.email or f"employee:{employee.id}",
            )
        except (ValidationError, ValueError) as exc:
            if isinstance(exc, ContactsRefused):
                errors = {exc.field: str(exc)}
            elif isinstance(exc, ValidationError):
                errors = {
                    str(e["loc"][0]) if e["loc"] else "contacts": _friendly(e) for e in exc.errors(include_url=False)
                }
            else:
                errors = {"by_area": "each area's number must be a whole number"}
            return form_page.again(422, {}, contacts_errors=errors, contacts_values=values)
        return form_page.again(
            200, {}, contacts_saved=row, contacts_today=contacts_on(session, employee.id or 0, clock.today())
        )


def _nonce_refusal(form: dict[str, str], employee: Employee, form_page: _FormPage) -> HTMLResponse | None:
    """The answer to a form whose nonce is expired (the form again), forged or minted for another
    person's link (403); None for a good one."""
    try:
        nonce = verify(FORM_PURPOSE, form.get("nonce", ""), max_age_seconds=FORM_SECONDS)
    except InvalidToken as exc:
        if exc.expired:
            return form_page.again(400, {"nonce": "the form was open for more than a day; please send it again"})
        return _denied("this form is not valid for this link; reopen your personal link")
    if nonce != {"e": employee.id}:
        return _denied("this form belongs to someone else's link; reopen your personal link")
    return None


def _store(form: dict[str, str], form_page: _FormPage) -> HTMLResponse:
    """Submit the form's observation; the thank-you page, or the form again with what went wrong."""
    session, employee, policy = form_page.session, form_page.employee, form_page.policy
    try:
        result = submit(session, employee, _submission(form, form_page.values), "web", policy=policy)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors(include_url=False):
            errors.setdefault(str(err["loc"][0]) if err["loc"] else "text", _friendly(err))
        new_id = form.get("client_request_id") or f"web-{uuid.uuid4().hex}"
        return form_page.again(422, errors, client_request_id=new_id)
    except RateLimited as exc:
        errors = {"text": f"{exc}. Your text is kept below."}
        return form_page.again(429, errors, headers={"Retry-After": str(exc.retry_after)})
    except ObservationConflict:
        return form_page.again(409, {"client_request_id": "this form was already used; please send it again"})
    obs = result.observation
    if form_page.draft is not None:  # submitted from a helpdesk draft: the draft is used up, in this transaction
        close_draft(session, form_page.draft, employee, obs.id)
    ctx = _form_context(
        session,
        employee,
        policy,
        action=form_page.action,
        saved=obs,
        saved_department=result.department_name,
        redaction_note=redaction_note(obs.redactions),
    )
    return _page("web/observe.html", 200, **ctx)


def _submission(form: dict[str, str], values: dict[str, Any]) -> dict[str, Any]:
    """The observation's fields from the form (an empty customer count: the default, 1)."""
    data = {
        k: values[k]
        for k in ("text", "impact", "customer_count", "product_area", "category", "target_department", "suggestion")
    }
    data["urgent"] = bool(values["urgent"])
    if form.get("client_request_id"):
        data["client_request_id"] = form["client_request_id"]
    if data["customer_count"].strip() == "":
        del data["customer_count"]  # left empty: the default (1)
    return data


def _values(form: dict[str, str]) -> dict[str, Any]:
    return {
        "text": form.get("text", ""),
        "impact": form.get("impact", ""),
        "customer_count": form.get("customer_count", ""),
        "product_area": form.get("product_area", ""),
        "category": form.get("category", ""),
        "target_department": form.get("target_department", ""),
        "suggestion": form.get("suggestion", ""),
        "urgent": form.get("urgent", "") in {"on", "true", "1", "yes"},
    }


def _friendly(err: ErrorDetails) -> str:
    kind = err["type"]
    if kind in {"missing", "string_too_short"} or (kind == "int_parsing" and err.get("input") in ("", None)):
        return "this is required"
    if kind == "int_parsing":
        return "must be a whole number"
    if kind in {"less_than_equal", "greater_than_equal"}:
        return err["msg"].replace("Input should be", "must be")
    return err["msg"].replace("Input should be", "must be").replace("Value error, ", "")


# ------------------------------------------------------------------------------------ acknowledge


def _ack_target(session: Session, token: str) -> tuple[AckTarget, dict[str, Any]]:
    payload = read_token("ack", token)
    if not isinstance(payload, dict) or not isinstance(payload.get("o"), int):
        raise InvalidToken("this link is not valid")
    return ack_link_target(session, payload["o"], payload.get("r")), payload


def _ack_context(target: AckTarget, **extra: Any) -> dict[str, Any]:
    ctx = {
        "obs": target.observation,
        "department": target.department,
        "rotator": target.rotator,
        "category_label": category_label(target.observation.category),
        "state_labels": ACK_STATE_LABELS,
        "states": ACK_STATES,
        "selected": "acknowledged",
        "done": False,
        "error": None,
    }
    ctx.update(extra)
    return ctx


@router.get("/ack/{token}", response_class=HTMLResponse)
def ack_page(token: str, request: Request) -> HTMLResponse:
    with session_scope(get_engine()) as session:
        try:
            target, payload = _ack_target(session, token)
        except InvalidToken as exc:
            return _denied(str(exc))
        nonce = sign(ACK_FORM_PURPOSE, {"o": payload["o"]})
        return _page("web/ack.html", **_ack_context(target, nonce=nonce, action=request.url.path))


@router.post("/ack/{token}", response_class=HTMLResponse)
def ack_submit(token: str, request: Request, form: dict[str, str] = Depends(_form_fields)) -> HTMLResponse:
    with session_scope(get_engine()) as session:
        try:
            target, payload = _ack_target(session, token)
            nonce = verify(ACK_FORM_PURPOSE, form.get("nonce", ""), max_age_seconds=FORM_SECONDS)
        except InvalidToken as exc:
            return _denied(str(exc))
        if nonce != {"o": payload["o"]}:
            return _denied("this form belongs to another observation")
        state = form.get("state", "")
        if state not in ACK_STATES:
            ctx = _ack_context(target, nonce=form["nonce"], action=request.url.path, error="choose what happens next")
            return _page("web/ack.html", 422, **ctx)
        by = str(payload["r"])  # bound: ack_link_target refused a link without a recipient
        set_ack_state(session, [payload["o"]], state, by=by, note=(form.get("note") or "")[:2000])
        return _page("web/ack.html", **_ack_context(target, done=True))
