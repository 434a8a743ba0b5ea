"""The policy file ``frontline.toml``: how rotations, mentoring, observations and digests work.

Every key is documented in ``frontline.example.toml``. Unknown keys are errors (a typo must not be
silently ignored); every error names the file, the key and why.
"""

from __future__ import annotations

import ast
import tomllib
from datetime import date
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from frontline.core.errors import PolicyError

DEFAULT_CATEGORIES = [
    "bug",
    "confusing_ux",
    "missing_feature",
    "policy_pricing",
    "delivery_fulfilment",
    "documentation",
    "praise",
    "other",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Blackout(_Strict):
    start: date
    end: date = Field(description="last day, inclusive")
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Blackout:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class Mentoring(_Strict):
    max_timezone_gap_hours: float = Field(default=6, ge=0, le=26)
    annual_cap: int = Field(default=10, ge=1, description="rotators per mentor per year")
    checkin_minutes: int = Field(default=30, ge=10, le=120)
    working_hours: tuple[int, int] = Field(default=(9, 17), description="local working hours [start, end)")
    weight_shared_skill: float = Field(default=3.0, ge=0)
    weight_timezone_hour: float = Field(default=1.0, ge=0)
    weight_load_balance: float = Field(default=0.5, ge=0)
    weight_feedback: float = Field(default=2.0, ge=0)
    weight_first_time_mentor_new_hire: float = Field(default=5.0, ge=0)
    review: bool = Field(
        default=False, description="hold new pairings as proposals until HR approves them (console or CLI)"
    )


class Observations(_Strict):
    product_areas: list[str] = Field(
        default_factory=lambda: [
            "billing",
            "checkout",
            "export",
            "onboarding",
            "mobile app",
            "hardware",
            "shipping",
            "account",
            "other",
        ]
    )
    categories: list[str] = Field(default_factory=lambda: list(DEFAULT_CATEGORIES))
    escalation_sla_hours: float = Field(default=24, gt=0)
    link_valid_days: int = Field(default=45, ge=1)
    max_text_chars: int = Field(default=5000, ge=100)
    submissions_per_hour: int = Field(default=60, ge=1, description="per rotator")
    area_departments: dict[str, str] = Field(
        default_factory=dict,
        description="product area -> department suggested as the observation's target (the rotator may change it)",
    )
    max_customer_count: int = Field(default=100000, ge=1, description="upper bound of 'customers who mentioned it'")

    @model_validator(mode="after")
    def _mapped_areas_exist(self) -> Observations:
        unknown = sorted(set(self.area_departments) - set(self.product_areas))
        if unknown:
            raise ValueError(f"area_departments names product areas not in product_areas: {', '.join(unknown)}")
        return self


class Reminders(_Strict):
    days_before: list[int] = Field(default_factory=lambda: [7, 1])
    weekly_nudge: bool = True


class Roster(_Strict):
    """The roster import's guard against a partial file (which would mark most of the company as left)."""

    max_leaver_fraction: float = Field(
        default=0.1, ge=0, le=1, description="share of active staff an import may mark as left without confirmation"
    )
    min_leavers_allowed: int = Field(
        default=5, ge=0, description="...but always at least this many (small companies, a few leavers at once)"
    )

    def leavers_allowed(self, active: int) -> int:
        """How many of ``active`` employees one import may mark as left without an explicit confirmation."""
        return max(self.min_leavers_allowed, int(self.max_leaver_fraction * active))


class Redaction(_Strict):
    """PII redaction of observations: what must never be redacted."""

    allow: list[str] = Field(
        default_factory=list,
        description="the company's own numbers and addresses (hotline, support mailbox, '@domain', shop IBAN), kept",
    )


class TimeOffFeed(_Strict):
    """One out-of-office calendar (an iCalendar URL). A person's own feed names them (``employee_id``): every busy
    event in it is their time off. A team feed does not: each event belongs to the people it names as attendees
    or organiser (by e-mail, as in employees.csv)."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    url: str = Field(min_length=1, description="http(s):// or file:// address of the .ics (may hold a secret token)")
    employee_id: str | None = Field(default=None, max_length=100)

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("https://", "http://", "file://")):
            raise ValueError("must start with https://, http:// or file://")
        return value


class TimeOff(_Strict):
    """Time off read from calendars on a schedule (``frontline timeoff sync``, deployment ``sync-time-off``)."""

    feeds: list[TimeOffFeed] = Field(default_factory=list)
    horizon_weeks: int = Field(default=52, ge=1, le=104, description="how far ahead events are read")
    min_hours: float = Field(
        default=4, gt=0, le=24, description="a timed event makes a day off when it covers this many hours of it"
    )
    timeout_seconds: float = Field(default=20, gt=0, le=300)
    max_bytes: int = Field(default=20_000_000, ge=1000, description="a feed larger than this is refused")

    @model_validator(mode="after")
    def _unique_names(self) -> TimeOff:
        names = [f.name for f in self.feeds]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"feed names must be unique: {', '.join(repeated)}")
        return self


class Requests(_Strict):
    """Change requests from rotators and heads (:mod:`frontline.rotations.requests`)."""

    auto_approve: bool = Field(
        default=False, description="approve at once a request naming a week that fits every hard rule"
    )


class Chat(_Strict):
    """Chat notifications through Apprise (every message still goes by mail too). Values are Apprise URLs
    (``slack://...``, ``workflows://...`` for Microsoft Teams, ``mmost://...``, ...); they hold secrets and are
    never shown or stored, only the channel's name (``hr``, ``department:Finance``)."""

    hr: str | None = Field(default=None, description="HR's channel: new change requests")
    departments: dict[str, str] = Field(
        default_factory=dict, description="department name -> channel: its urgent observations"
    )
    people: str | None = Field(
        default=None,
        description="an Apprise URL with {email} where the person's work e-mail goes (e.g. a Slack bot: "
        "slack://xoxb-.../{email}, which Slack resolves to the person's direct messages): rotators' reminders, "
        "welcomes and nudges",
    )
    mail_too: bool = Field(
        default=True, description="false: a rotator told by chat (people) is not also mailed the same reminder"
    )
    max_attempts: int = Field(default=8, ge=1, le=50)

    @model_validator(mode="after")
    def _urls(self) -> Chat:
        named = [
            ("hr", self.hr),
            ("people", self.people),
            *[(f"departments.{k}", v) for k, v in self.departments.items()],
        ]
        for name, url in named:
            if url is not None and "://" not in url:
                raise ValueError(f"chat.{name}: not an Apprise URL (e.g. slack://TokenA/TokenB/TokenC)")
        if self.people is not None and "{email}" not in self.people:
            raise ValueError(
                "chat.people: needs {email} where the person's address goes (e.g. slack://xoxb-.../{email})"
            )
        if not self.mail_too and self.people is None:
            raise ValueError("chat.mail_too = false needs chat.people (else rotators would be told nothing)")
        return self


# The field paths each helpdesk product's recorded payload uses (tests/data/helpdesk/), the defaults of
# [helpdesk.sources.<name>]; a path is dotted keys and list indexes (``-1`` the last), ``header:<Name>`` a
# request header, several paths (``event_id``) are joined.
HELPDESK_DEFAULT_FIELDS: dict[str, dict[str, str | list[str]]] = {
    "zendesk": {
        "ticket_id": "ticket.id",
        "event_id": ["ticket.updated_at"],
        "assignee_email": "ticket.assignee.email",
        "assignee_id": "ticket.assignee.id",
        "subject": "ticket.title",
        "description": "ticket.description",
        "tags": "ticket.tags",
        "updated_at": "ticket.updated_at",
    },
    "freshdesk": {
        "ticket_id": "freshdesk_webhook.ticket_id",
        "event_id": ["freshdesk_webhook.ticket_updated_at"],
        "assignee_email": "freshdesk_webhook.ticket_agent_email",
        "assignee_id": "",
        "subject": "freshdesk_webhook.ticket_subject",
        "description": "freshdesk_webhook.ticket_description",
        "tags": "freshdesk_webhook.ticket_tags",
        "updated_at": "freshdesk_webhook.ticket_updated_at",
    },
    "helpscout": {
        "ticket_id": "id",
        "event_id": ["header:X-HelpScout-Event", "userUpdatedAt"],
        "assignee_email": "assignee.email",
        "assignee_id": "assignee.id",
        "subject": "subject",
        "description": "_embedded.threads.-1.body",
        "tags": "tags",
        "updated_at": "userUpdatedAt",
    },
}
HELPDESK_REQUIRED_FIELDS = ("ticket_id", "event_id", "subject", "updated_at")


def _check_path(path: str) -> str:
    if path.startswith("header:"):
        if not path.removeprefix("header:").strip():
            raise ValueError(f"{path!r}: name the header after 'header:'")
        return path
    if any(not part for part in path.split(".")):
        raise ValueError(f"{path!r}: empty key in the path (write keys separated by single dots, e.g. ticket.id)")
    return path


class HelpdeskFields(_Strict):
    """Where each value is in one source's payload (see :data:`HELPDESK_DEFAULT_FIELDS`); an empty path: not used."""

    ticket_id: str = ""
    event_id: list[str] = Field(default_factory=list, description="paths joined: together unique per ticket event")
    assignee_email: str = ""
    assignee_id: str = Field(default="", description="the helpdesk's agent id, looked up in the source's agents")
    subject: str = ""
    description: str = ""
    tags: str = Field(default="", description="a list of tags, or one string of tags separated by commas or spaces")
    updated_at: str = Field(default="", description="when the rotator handled the ticket (ISO 8601 or Unix seconds)")

    @field_validator("ticket_id", "assignee_email", "assignee_id", "subject", "description", "tags", "updated_at")
    @classmethod
    def _path(cls, value: str) -> str:
        return _check_path(value) if value else value

    @field_validator("event_id")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        return [_check_path(v) for v in value]


class HelpdeskSource(_Strict):
    """One helpdesk posting ticket events to ``/api/helpdesk/<name>`` (``kind`` says how it signs them)."""

    kind: Literal["zendesk", "freshdesk", "helpscout"]
    secret: SecretStr = Field(description="the webhook's signing secret (Zendesk, Help Scout) or shared password")
    basic_user: str = Field(default="frontline", max_length=200, description="Freshdesk: the basic-auth user name")
    fields: dict[str, str | list[str]] = Field(default_factory=dict, description="overrides of the default paths")
    agents: dict[str, str] = Field(default_factory=dict, description="helpdesk agent id -> HR employee id")
    tag_areas: dict[str, str] = Field(default_factory=dict, description="ticket tag -> product area")
    default_area: str | None = Field(default=None, description="the draft's area when no tag names one")

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("the secret must be at least 16 characters long")
        return value

    def mapping(self) -> HelpdeskFields:
        """The product's default paths with this source's overrides."""
        return HelpdeskFields.model_validate({**HELPDESK_DEFAULT_FIELDS[self.kind], **self.fields})

    @model_validator(mode="after")
    def _valid_mapping(self) -> HelpdeskSource:
        unknown = sorted(set(self.fields) - set(HelpdeskFields.model_fields))
        if unknown:
            raise ValueError(
                f"fields: unknown field {', '.join(unknown)} (known: {', '.join(HelpdeskFields.model_fields)})"
            )
        try:
            mapping = self.mapping()
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"fields.{first['loc'][0]}: {first['msg'].removeprefix('Value error, ')}") from None
        missing = [f for f in HELPDESK_REQUIRED_FIELDS if not getattr(mapping, f)]
        if not mapping.assignee_email and not mapping.assignee_id:
            missing.append("assignee_email or assignee_id")
        if missing:
            raise ValueError(f"fields: a path is needed for {', '.join(missing)}")
        return self


class Helpdesk(_Strict):
    """Ticket events from helpdesks (``POST /api/helpdesk/<source>``): drafts of observations and contact counts."""

    sources: dict[str, HelpdeskSource] = Field(default_factory=dict)
    replay_window_seconds: int = Field(
        default=300, ge=30, le=3600, description="a signed timestamp older or newer than this is refused"
    )

    @field_validator("sources")
    @classmethod
    def _names(cls, value: dict[str, HelpdeskSource]) -> dict[str, HelpdeskSource]:
        import re

        bad = sorted(n for n in value if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,49}", n))
        if bad:
            raise ValueError(f"source names are lower-case letters, digits, - and _: {', '.join(map(repr, bad))}")
        return value


class Policy(_Strict):
    support_department: str
    length_weeks: int = Field(default=4, ge=1, le=26)
    new_hire_within_weeks: int = Field(default=8, ge=1, le=52)
    cycle_months: int = Field(default=12, ge=1, le=60)
    seats_per_week: int = Field(default=20, ge=1)
    max_department_away_fraction: float = Field(default=0.1, gt=0, le=1)
    # planner objective: cost per rotation start beyond the weekly target (x1, x2, x3 beyond 1, 2, 3 x the
    # target); at most 3 so the steepest step (3 x 3 = 9) stays below a new hire's first week late (10)
    balance_weight: float = Field(default=2.0, ge=0, le=3)
    blackouts: list[Blackout] = Field(default_factory=list)
    holidays_country: str | None = Field(default=None, min_length=2, max_length=2)
    mentoring: Mentoring = Field(default_factory=Mentoring)
    observations: Observations = Field(default_factory=Observations)
    reminders: Reminders = Field(default_factory=Reminders)
    roster: Roster = Field(default_factory=Roster)
    redaction: Redaction = Field(default_factory=Redaction)
    time_off: TimeOff = Field(default_factory=TimeOff)
    chat: Chat = Field(default_factory=Chat)
    requests: Requests = Field(default_factory=Requests)
    helpdesk: Helpdesk = Field(default_factory=Helpdesk)

    @model_validator(mode="after")
    def _helpdesk_areas(self) -> Policy:
        areas = set(self.observations.product_areas)
        for name, source in self.helpdesk.sources.items():
            named = [*source.tag_areas.values(), *([source.default_area] if source.default_area else [])]
            unknown = sorted(set(named) - areas)
            if unknown:
                raise ValueError(
                    f"helpdesk.sources.{name}: product area {', '.join(map(repr, unknown))} is not in "
                    "observations.product_areas"
                )
        return self

    @field_validator("holidays_country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.upper()
        if value not in holiday_country_codes():
            raise ValueError(f"{value!r} is not a country the holidays package knows")
        return value


@lru_cache(maxsize=1)
def holiday_country_codes() -> frozenset[str]:
    """The country codes the holidays package knows, aliases included (what
    ``holidays.registry.EntityLoader.get_country_codes()`` lists: the 2- and 3-letter codes of its
    ``COUNTRIES`` table), read from that table in the registry's source without importing the package:
    importing ``holidays`` loads its calendars, ~60 ms of every command's start for a check that needs the
    codes alone (as :func:`models.db.migration_heads` reads the migrations without Alembic). Falls back to
    the import when the table is not where, or not the literal, this expects."""
    spec = find_spec("holidays")
    try:
        registry = Path(spec.origin if spec and spec.origin else "").with_name("registry.py")
        for node in ast.parse(registry.read_text(encoding="utf-8")).body:
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and node.target.id == "COUNTRIES"
                and node.value is not None
            ):
                table = ast.literal_eval(node.value)
                return frozenset(code for names in table.values() for code in names[1:] if 2 <= len(code) <= 3)
    except (OSError, SyntaxError, ValueError, TypeError, AttributeError):
        pass
    from holidays.registry import EntityLoader

    return frozenset(EntityLoader.get_country_codes(include_aliases=True))


def parse_policy(data: dict, source: str = "frontline.toml") -> Policy:
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling against frontline.example.toml)"
            elif err["type"] == "missing":
                msg = "required key is missing"
            problems.append(f"{source}: {key}: {msg}")
        raise PolicyError(problems) from None


def load_policy(path: Path | str | None = None) -> Policy:
    """Read and validate the policy file (default: the configured ``policy_path``)."""
    if path is None:
        from frontline.core.settings import get_settings

        path = get_settings().policy_path
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise PolicyError([f"{path}: file not found (copy frontline.example.toml to start)"]) from None
    except UnicodeDecodeError as exc:
        raise PolicyError([f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"]) from None
    except OSError as exc:
        raise PolicyError([f"{path}: cannot read the file: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_policy(data, str(path))
