"""``/scim/v2``: SCIM 2.0 provisioning for Okta, Entra ID and other identity providers.

scim2-server's ASGI application serves the protocol over :class:`frontline.people.scim.AsyncFrontlineStorage`
(the database work lives there). This module adds what is Frontline's: the bearer token (a hashed
``frontline scim token create`` token; never logged), 503 when the database is unreachable, 409 when a
concurrent request took a unique value, and every refused request recorded as the connector's last error
(``frontline status``), without the token; a deactivation that cannot have the planning lock within the
web's wait (a plan or pairing run is writing) gets 503 with Retry-After, nothing written. Entra ID's PATCH
dialect (``"op": "Replace"``, ``"value": "False"``) is read by scim2-models as it is (``tests/test_scim.py``
sends it).
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus

from scim2_models import UnauthorizedException, UniquenessException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from frontline.core.errors import PlanningBusy
from frontline.people import scim
from frontline.web.auth import WEB_PLANNING_LOCK_WAIT

PREFIX = "/scim"
MAX_BODY_BYTES = 1024 * 1024
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
# Retry-After when a deactivation found a plan or pairing run holding the planning lock past the web's wait:
# such a run takes seconds to a few minutes (frontline pair at 10k: 11 s).
BUSY_RETRY_AFTER = "30"


class ScimApp(ASGIApplication):
    """scim2-server's ASGI application with Frontline's token, database errors and connector status."""

    async def dispatch_request(self, request: ScimRequest) -> ScimResponse:
        if self.needs_auth(request):
            scheme, _, token = (request.header("Authorization") or "").partition(" ")
            name = await asyncio.to_thread(scim.authenticate, token.strip()) if scheme.lower() == "bearer" else None
            if name is None:
                raise UnauthorizedException(
                    detail="a valid SCIM bearer token is required (frontline scim token create)"
                )
            request.subject = name
        return await self.handler.handle(request)

    def handle_exception(self, request: ScimRequest, exception: Exception) -> ScimResponse:
        """The database cannot be reached: 503 with Retry-After (Okta and Entra ID retry), as a SCIM error;
        the transaction was rolled back, so nothing was written."""

        if isinstance(exception, PlanningBusy):
            # Not 409: RFC 7644 3.12 gives 409 to a duplicate (scimType uniqueness) or a version conflict, and
            # identity providers treat it so. A plan or pairing run is writing: try again later (RFC 9110 503).
            # The identity provider's administrator may see the detail: who holds the lock, not the CLI's setting.
            detail = f"{exception.detail()}; nothing was written, retry after {BUSY_RETRY_AFTER} s"
            self.log.warning("SCIM %s %s: %s", request.method, request.path, detail)
            body = {"schemas": [ERROR], "status": "503", "detail": detail}
            return ScimResponse(HTTPStatus.SERVICE_UNAVAILABLE, body, {"Retry-After": BUSY_RETRY_AFTER})
        if isinstance(exception, OperationalError):
            self.log.warning("SCIM %s %s: database unavailable: %s", request.method, request.path, type(exception))
            detail = "Frontline's database is unavailable; nothing was written, retry later"
            body = {"schemas": [ERROR], "status": "503", "detail": detail}
            return ScimResponse(HTTPStatus.SERVICE_UNAVAILABLE, body, {"Retry-After": "60"})
        if isinstance(exception, IntegrityError):  # two requests took the same userName or e-mail at once
            detail = "a unique value (userName, e-mail, employee number) was taken by a concurrent request; retry"
            return self.service.error_response(UniquenessException(detail=detail))
        return super().handle_exception(request, exception)

    async def serve(self, request: ScimRequest) -> ScimResponse:
        response = await super().serve(request)
        status = int(response.status)
        if status >= 400 and not (status == 404 and request.method == "GET"):
            body = response.body if isinstance(response.body, dict) else {}
            kind = f" {body['scimType']}" if body.get("scimType") else ""
            path = request.path.split("?")[0]
            message = f"{request.method} {path}: {status}{kind}: {body.get('detail', '')}"
            try:
                await asyncio.to_thread(scim.record_error, message)
            except SQLAlchemyError:  # the database is down: the answer still goes out, the log says why
                self.log.warning("SCIM connector status not recorded: %s", message)
        return response


def make_app() -> ScimApp:
    provider = scim.provider()
    return ScimApp(
        scim.AsyncFrontlineStorage(lock_wait=WEB_PLANNING_LOCK_WAIT),
        provider,
        service=ScimService(provider, secret=None),
    )
