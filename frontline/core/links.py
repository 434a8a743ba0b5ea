"""Every signed link Frontline puts in mail, built and checked in one place.

Each link kind has its own token *purpose*, so a token minted for one kind never opens another, and
binds the person or object it was made for. Lifetimes come from the policy where it has one.
"""

from __future__ import annotations

import re
from typing import Any

from frontline.core.security import sign, verify

DAY = 24 * 3600

# purpose -> default lifetime in seconds
LIFETIMES = {
    "observe": 45 * DAY,  # personal observation form (policy.observations.link_valid_days overrides)
    "ack": 30 * DAY,  # a head acknowledging / acting on observations
    "survey": 30 * DAY,  # rotation / pairing feedback survey
    "signin": 15 * 60,  # console magic link
    "unsubscribe": 365 * DAY,
    "pairing": 60 * DAY,  # a mentor accepting or declining a pairing
    "request": 60 * DAY,  # a rotator asking to change their rotation
}


def _base() -> str:
    from frontline.core.settings import get_settings

    return get_settings().base_url


def make_token(purpose: str, payload: Any) -> str:
    if purpose not in LIFETIMES:
        raise ValueError(f"unknown link purpose {purpose!r}")
    return sign(purpose, payload)


def read_token(purpose: str, token: str, max_age_seconds: float | None = None) -> Any:
    """The payload of a valid token of ``purpose``; raises ``frontline.core.security.InvalidToken``."""
    return verify(purpose, token, max_age_seconds=max_age_seconds or LIFETIMES[purpose])


def url(purpose: str, path: str, payload: Any) -> str:
    """``<base_url>/<path>/<token>`` for a payload."""
    return f"{_base()}/{path.strip('/')}/{make_token(purpose, payload)}"


def observe_url(employee_id: int) -> str:
    """The rotator's personal observation form (``Employee.id``)."""
    return url("observe", "observe", {"e": employee_id})


def survey_url(pairing_id: int, role: str) -> str:
    """The wrap-up survey of one side of a mentor pairing (purpose ``survey``; ``role`` is
    ``rotator`` or ``mentor``, bound in the token so one side's link never answers for the other)."""
    if role not in ("rotator", "mentor"):
        raise ValueError(f"unknown survey role {role!r}")
    return url("survey", "survey", {"p": pairing_id, "r": role})


def ack_url(observation_id: int, recipient: str) -> str:
    """Acknowledge one urgent observation (purpose ``ack``), bound to the ``recipient`` it is mailed to:
    it works only while they still receive the department's mail, and records them as who acted.
    GET shows a confirmation page; only the POST from that page changes anything."""
    if not recipient or not recipient.strip():
        raise ValueError("an acknowledge link is bound to the person it is mailed to")
    return url("ack", "ack", {"o": observation_id, "r": recipient.strip().lower()})


def signin_url(email: str, nonce: str) -> str:
    """A console magic link for ``email`` (15 minutes; ``nonce`` makes each link single-use)."""
    return url("signin", "console/signin", {"m": email.strip().lower(), "n": nonce})


def pairing_url(pairing_id: int, mentor_id: int) -> str:
    """A mentor accepting or declining one pairing (purpose ``pairing``), bound to that mentor
    (``Employee.id``): the link answers for nobody else and for no other pairing."""
    return url("pairing", "pairing", {"p": pairing_id, "m": mentor_id})


def request_url(rotation_id: int, employee_id: int) -> str:
    """A rotator asking to change one rotation (purpose ``request``: another week, or cannot do it),
    bound to the rotation and its rotator (``Employee.id``)."""
    return url("request", "request", {"r": rotation_id, "e": employee_id})


THEME_ACTIONS = ("acknowledged", "planned", "fixed", "wont_fix")


def theme_action_url(
    department_id: int,
    week: str,
    product_area: str,
    category: str,
    theme: str,
    recipient: str,
    action: str | None = None,
) -> str:
    """A department head acting on one digest theme (purpose ``ack``): the signed token names the
    department, ISO week, theme (area, category, label) and the recipient; ``action`` is a pre-selected
    choice in the query string (the confirm page lets the head change it)."""
    payload = {"d": department_id, "w": week, "a": product_area, "c": category, "t": theme, "r": recipient}
    link = url("ack", "digest/theme", payload)
    if action is not None:
        if action not in THEME_ACTIONS:
            raise ValueError(f"unknown theme action {action!r}")
        link += f"?action={action}"
    return link


def digest_unsubscribe_url(department_id: int, email: str) -> str:
    """One-click unsubscribe of ``email`` from a department's digest (purpose ``unsubscribe``)."""
    return url("unsubscribe", "digest/unsubscribe", {"d": department_id, "m": email.strip().lower()})


# ------------------------------------------------------------------------------ logs

_TOKEN_PATHS = re.compile(
    r"(?P<prefix>/(?:observe|ack|survey|pairing|request|console/signin|digest/theme|digest/unsubscribe|calendar))/"
    r"(?P<token>[^/?#\s]+?)(?P<suffix>\.ics)?(?=$|[/?#\s])"
)
_LONG_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_.~%-]{32,}(?=$|[/?#\s])")  # any other secret-looking segment
_SECRET_QUERY = re.compile(r"(?i)(?<=[?&])(token|key|secret|password|sig|signature|csrf_token)=[^&#\s]*")
MASK = "[token]"


def mask_link_tokens(path: str) -> str:
    """``path`` (with its query) as it may be logged: the token of every signed link and feed URL, any
    other path segment that looks like a secret, and secret-named query values replaced by ``[token]``.
    ``/observe/eyJlIjo...`` -> ``/observe/[token]``; ``/calendar/cal_x.ics`` -> ``/calendar/[token].ics``."""
    path = _TOKEN_PATHS.sub(lambda m: f"{m['prefix']}/{MASK}{m['suffix'] or ''}", path)
    path = _LONG_SEGMENT.sub(MASK, path)
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}={MASK}", path)
