"""Single sign-on for the console with OpenID Connect (authorization code flow with PKCE).

1. :func:`begin`: a fresh ``state``, ``nonce`` and PKCE verifier (S256), kept in the signed console cookie
   (:class:`Pending`), and the provider's authorization URL (from its discovery document).
2. The provider signs the person in and sends the browser back to ``/console/sso/callback``.
3. :func:`finish`: the returned ``state`` must be the cookie's (constant-time compare); the code is
   exchanged at the token endpoint (client secret + PKCE verifier, over the back channel); the ID token's
   signature is checked against the provider's JWKS (joserfc), and its claims: ``iss`` is the configured
   issuer, ``aud`` holds our client id (``azp`` too when there are several), ``exp``/``iat``/``nbf`` hold
   (60 s leeway), ``nonce`` is the cookie's, and ``email`` is present and not marked unverified.
4. :func:`sign_in`: roles. Members of a group in ``FRONTLINE_OIDC_HR_GROUPS`` (claim
   ``FRONTLINE_OIDC_GROUPS_CLAIM``) become HR admins (a :class:`models.ConsoleUser` added by ``sso``); an
   HR admin added by single sign-on who signs in without the group loses the role (admins added with
   ``frontline users add-hr`` keep theirs). Heads and rotators are found by e-mail, as with sign-in links.
   Then a server-side session starts, exactly as a sign-in link starts one.

Every failure is an :class:`OidcError` with a message for the person (never a token or the client secret).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlmodel import Session, col, select

from frontline.access.principal import load_principal, normalise_email
from frontline.core.settings import Settings
from models import ConsoleUser

CALLBACK_PATH = "/console/sso/callback"
PENDING_SECONDS = 600  # a sign-in must come back from the provider within 10 minutes
LEEWAY_SECONDS = 60
DISCOVERY_SECONDS = 3600
SSO_ACTOR = "sso"

_discovery_cache: dict[str, tuple[float, dict[str, Any]]] = {}


class OidcError(Exception):
    """Single sign-on failed; the message can be shown to the person."""


@dataclass(frozen=True)
class Pending:
    """What the console cookie keeps between :func:`begin` and :func:`finish`."""

    state: str
    nonce: str
    verifier: str
    next: str
    at: int

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "nonce": self.nonce, "verifier": self.verifier, "next": self.next, "at": self.at}

    @classmethod
    def from_dict(cls, data: Any) -> Pending | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                str(data["state"]), str(data["nonce"]), str(data["verifier"]), str(data["next"]), int(data["at"])
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class Identity:
    email: str
    name: str
    groups: frozenset[str]
    subject: str


def enabled(settings: Settings) -> bool:
    return settings.oidc_issuer is not None


def _client(settings: Settings) -> tuple[str, str | None]:
    if not settings.oidc_client_id:
        raise OidcError("Single sign-on is not configured completely (FRONTLINE_OIDC_CLIENT_ID is not set).")
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
    return settings.oidc_client_id, secret


def redirect_uri(settings: Settings) -> str:
    return settings.base_url + CALLBACK_PATH


def discovery(settings: Settings, *, now: float | None = None) -> dict[str, Any]:
    """The provider's discovery document (cached for an hour); its ``issuer`` must be the configured one."""
    import httpx

    issuer = settings.oidc_issuer
    if issuer is None:
        raise OidcError("Single sign-on is not configured.")
    now = time.monotonic() if now is None else now
    cached = _discovery_cache.get(issuer)
    if cached and now - cached[0] < DISCOVERY_SECONDS:
        return cached[1]
    try:
        answer = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
        answer.raise_for_status()
        document = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OidcError(f"The identity provider cannot be reached ({type(exc).__name__}); try again later.") from None
    if not isinstance(document, dict) or document.get("issuer", "").rstrip("/") != issuer:
        raise OidcError("The identity provider's discovery document names another issuer; check FRONTLINE_OIDC_ISSUER.")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(key), str):
            raise OidcError(f"The identity provider's discovery document has no {key}.")
    _discovery_cache[issuer] = (now, document)
    return document


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def begin(settings: Settings, next_url: str, *, now: int | None = None) -> tuple[str, Pending]:
    """The provider's authorization URL for a new sign-in, and what to keep in the cookie until it returns."""
    client_id, _ = _client(settings)
    document = discovery(settings)
    pending = Pending(
        state=secrets.token_urlsafe(24),
        nonce=secrets.token_urlsafe(24),
        verifier=secrets.token_urlsafe(48),
        next=next_url,
        at=int(time.time()) if now is None else now,
    )
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri(settings),
        "scope": settings.oidc_scopes,
        "state": pending.state,
        "nonce": pending.nonce,
        "code_challenge": _s256(pending.verifier),
        "code_challenge_method": "S256",
    }
    return f"{document['authorization_endpoint']}?{urlencode(query)}", pending


def finish(settings: Settings, pending: Pending | None, params: dict[str, str], *, now: int | None = None) -> Identity:
    """Check what the provider sent back, exchange the code and verify the ID token (see the module doc)."""
    now = int(time.time()) if now is None else now
    if pending is None:
        raise OidcError("This sign-in was not started here (or this browser lost its cookie); start again.")
    if now - pending.at > PENDING_SECONDS:
        raise OidcError("This sign-in took too long; start again.")
    if params.get("error"):  # (some providers leave out the state here; an error signs nobody in anyway)
        reason = params.get("error_description") or params["error"]
        raise OidcError(f"The identity provider did not sign you in: {reason[:200]}")
    if not hmac.compare_digest(params.get("state", ""), pending.state):
        raise OidcError("This answer from the identity provider does not belong to this sign-in; start again.")
    code = params.get("code")
    if not code:
        raise OidcError("The identity provider sent no authorization code; start again.")
    id_token = _exchange(settings, code, pending.verifier)
    claims = verify_id_token(settings, id_token, nonce=pending.nonce, now=now)
    return identity_from_claims(settings, claims)


def _exchange(settings: Settings, code: str, verifier: str) -> str:
    import httpx

    client_id, secret = _client(settings)
    document = discovery(settings)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri(settings),
        "code_verifier": verifier,
        "client_id": client_id,
    }
    auth = (client_id, secret) if secret else None
    try:
        answer = httpx.post(document["token_endpoint"], data=form, auth=auth, timeout=15)
    except httpx.HTTPError as exc:
        raise OidcError(f"The identity provider cannot be reached ({type(exc).__name__}); try again later.") from None
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200 or not isinstance(body, dict):
        error = body.get("error", f"HTTP {answer.status_code}") if isinstance(body, dict) else answer.status_code
        raise OidcError(f"The identity provider refused the sign-in code ({error}); start again.")
    token = body.get("id_token")
    if not isinstance(token, str):
        raise OidcError("The identity provider returned no ID token (is the 'openid' scope allowed?).")
    return token


def _key_set(settings: Settings) -> Any:
    import httpx
    from joserfc.jwk import KeySet

    try:
        answer = httpx.get(discovery(settings)["jwks_uri"], timeout=10)
        answer.raise_for_status()
        return KeySet.import_key_set(answer.json())
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise OidcError(f"The identity provider's signing keys cannot be read ({type(exc).__name__}).") from None


def verify_id_token(
    settings: Settings, token: str, *, nonce: str, now: int, key_set: Any | None = None
) -> dict[str, Any]:
    """The ID token's claims after checking its signature and ``iss``, ``aud``/``azp``, ``exp``, ``iat``,
    ``nbf`` and ``nonce``; :class:`OidcError` otherwise."""
    from joserfc import jwt
    from joserfc.errors import JoseError

    client_id, _ = _client(settings)
    keys = key_set if key_set is not None else _key_set(settings)
    try:
        decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256", "PS256", "EdDSA", "RS384", "RS512"])
    except (JoseError, ValueError) as exc:
        raise OidcError(f"The ID token's signature is not valid ({type(exc).__name__}).") from None
    claims = dict(decoded.claims)
    if str(claims.get("iss", "")).rstrip("/") != settings.oidc_issuer:
        raise OidcError("The ID token was issued by another identity provider.")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        raise OidcError("The ID token was issued for another application.")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise OidcError("The ID token was issued for another application (azp).")
    for name in ("exp", "iat"):
        if not isinstance(claims.get(name), int | float):
            raise OidcError(f"The ID token has no {name}.")
    if claims["exp"] + LEEWAY_SECONDS < now:
        raise OidcError("The ID token has expired; start again.")
    if claims["iat"] - LEEWAY_SECONDS > now or claims.get("nbf", 0) - LEEWAY_SECONDS > now:
        raise OidcError("The ID token is not valid yet (check the clocks).")
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
        raise OidcError("The ID token does not belong to this sign-in (nonce); start again.")
    return claims


def identity_from_claims(settings: Settings, claims: dict[str, Any]) -> Identity:
    email = normalise_email(str(claims.get("email") or ""))
    if "@" not in email:
        raise OidcError("The identity provider did not share your e-mail address (scope 'email').")
    if claims.get("email_verified") is False:
        raise OidcError("The identity provider has not verified your e-mail address.")
    raw = claims.get(settings.oidc_groups_claim) or []
    groups = frozenset(str(g) for g in (raw if isinstance(raw, list) else [raw]))
    return Identity(
        email=email, name=str(claims.get("name") or email)[:300], groups=groups, subject=str(claims.get("sub", ""))
    )


def sync_hr_role(session: Session, settings: Settings, identity: Identity) -> None:
    """Grant or take back the HR admin role that the identity provider's groups decide (see module doc)."""
    from frontline.access.accounts import add_hr, remove_hr

    if not settings.hr_groups:
        return
    user = session.exec(select(ConsoleUser).where(col(ConsoleUser.email) == identity.email)).first()
    if identity.groups & settings.hr_groups:
        if user is None or user.disabled_at is not None:
            added = add_hr(session, identity.email, actor=SSO_ACTOR)
            added.added_by = SSO_ACTOR
    elif user is not None and user.added_by == SSO_ACTOR and user.disabled_at is None:
        remove_hr(session, identity.email, actor=SSO_ACTOR)
    session.flush()


def sign_in(session: Session, settings: Settings, identity: Identity, nonce: str) -> dict[str, Any] | None:
    """Sync the HR role, then start the person's session (returns the cookie payload), or None when they
    have no console role (the role change, e.g. HR taken back, still stands). The caller commits either way."""
    from frontline.access import sessions
    from frontline.core import audit

    sync_hr_role(session, settings, identity)
    if load_principal(session, identity.email) is None:
        return None
    audit.record(
        session,
        actor=identity.email,
        action="console.signin",
        subject_type="console_user",
        subject_id=identity.email,
        method="oidc",
    )
    return sessions.start(session, identity.email, f"oidc:{nonce}")
