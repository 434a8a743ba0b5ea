"""The organiser mailbox over IMAP (IMAPClient): where calendar apps send the RSVP replies to invites.

``FRONTLINE_IMAP_URL`` says where: ``imaps://user@host[:993]/INBOX`` (implicit TLS),
``imap://user@host[:143]/INBOX`` (STARTTLS, required before the password is sent unless the URL says
``?tls=none``, for a server on loopback or a trusted network), ``?cafile=/path/ca.pem`` trusts a private CA
(certificates and host names are always verified). User and password are URL-decoded; the password may
come from a Prefect Secret block (``FRONTLINE_IMAP_PASSWORD_BLOCK``). The path names the folder to read
(``INBOX`` when empty).

:class:`Mailbox` reads the messages not handled yet (``UNSEEN``; with a processed folder every message in
the folder, since handled ones are moved away) without marking them (``BODY.PEEK[]``), and marks each one
once the caller has committed what it meant: ``\\Seen`` (and ``\\Flagged`` for one that was skipped, so a
person can find it), then moved to the processed folder when one is configured.

Every failure is a :class:`MailboxError` naming the server, the user and the step, never the password
(it is scrubbed from any text a library returns); ``transient`` says whether trying again later may help
(no answer, dropped connection) or not (wrong credentials, no such folder, a server refusing TLS).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

FETCH_BATCH = 50
TIMEOUT = 30.0


class MailboxError(Exception):
    """The mailbox could not be used; the message is safe to show and log (no password)."""

    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class ImapUrl:
    host: str
    port: int
    tls: str  # implicit | starttls | none
    username: str
    password: str
    folder: str
    cafile: str | None

    def __repr__(self) -> str:  # never show the password
        return f"ImapUrl({self.where})"

    @property
    def where(self) -> str:
        """``user@host:port/folder``, for messages."""
        return f"{self.username}@{self.host}:{self.port}/{self.folder}"


def parse_imap_url(url: str) -> ImapUrl:
    """The parts of ``FRONTLINE_IMAP_URL``; ValueError (without the URL, which may hold a password) when
    it is not usable."""
    parts = urlsplit(url)
    if parts.scheme not in {"imap", "imaps"}:
        raise ValueError("FRONTLINE_IMAP_URL must start with imaps:// (TLS) or imap:// (STARTTLS)")
    if not parts.hostname:
        raise ValueError("FRONTLINE_IMAP_URL has no host (expected imaps://user@host:993/INBOX)")
    if not parts.username:
        raise ValueError("FRONTLINE_IMAP_URL has no user name (expected imaps://user@host:993/INBOX)")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - {"tls", "cafile"})
    if unknown:
        raise ValueError(f"FRONTLINE_IMAP_URL: unknown option(s) {', '.join(unknown)} (known: tls, cafile)")
    implicit = parts.scheme == "imaps"
    tls = query.get("tls", "implicit" if implicit else "starttls")
    if tls not in ({"implicit"} if implicit else {"starttls", "none"}):
        raise ValueError(
            f"FRONTLINE_IMAP_URL: tls={tls!r} is not one of starttls, none (imap://) or implicit (imaps://)"
        )
    try:
        port = parts.port or (993 if implicit else 143)
    except ValueError:
        raise ValueError("FRONTLINE_IMAP_URL: the port is not a number between 0 and 65535") from None
    return ImapUrl(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username),
        password=unquote(parts.password or ""),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
        cafile=query.get("cafile"),
    )


class Mailbox:
    """One IMAP session on the organiser mailbox (use as a context manager)."""

    def __init__(self, url: ImapUrl, *, processed_folder: str | None = None, timeout: float = TIMEOUT):
        self.url = url
        self.processed_folder = processed_folder or None
        self.timeout = timeout
        self._client: Any = None

    def __repr__(self) -> str:
        return f"Mailbox({self.url.where})"

    def _scrub(self, text: str) -> str:
        if self.url.password:
            text = text.replace(self.url.password, "**********")
        return text

    def _error(self, step: str, exc: BaseException) -> MailboxError:
        from imapclient.exceptions import LoginError

        where = f"IMAP {self.url.host}:{self.url.port}"
        detail = self._scrub(str(exc) or type(exc).__name__)
        if isinstance(exc, LoginError):
            return MailboxError(
                f"{where}: login as {self.url.username!r} refused (wrong user name or password?): {detail}",
                transient=False,
            )
        if isinstance(exc, ssl.SSLError | ssl.CertificateError):
            return MailboxError(f"{where}: TLS failed while {step}: {detail}", transient=False)
        if isinstance(exc, OSError | EOFError):  # refused, unreachable, timed out, dropped
            return MailboxError(f"{where}: no answer while {step}: {detail}", transient=True)
        return MailboxError(f"{where}: the server refused {step}: {detail}", transient=False)

    def __enter__(self) -> Mailbox:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        from imapclient import IMAPClient

        url = self.url
        context = ssl.create_default_context(cafile=url.cafile) if url.tls != "none" else None
        step = "connecting"
        try:
            client = IMAPClient(
                url.host, port=url.port, ssl=url.tls == "implicit", ssl_context=context, timeout=self.timeout
            )
            self._client = client
            if url.tls == "starttls":
                step = "starting TLS"
                if not client.has_capability("STARTTLS"):
                    raise MailboxError(
                        f"IMAP {url.host}:{url.port} offers no STARTTLS: refusing to send the password unencrypted "
                        "(use imaps://, or add ?tls=none to the URL only for a server on a trusted network)",
                        transient=False,
                    )
                client.starttls(context)
            step = "logging in"
            client.login(url.username, url.password)
            step = f"opening the folder {url.folder!r}"
            client.select_folder(url.folder)
            if self.processed_folder:
                step = f"creating the folder {self.processed_folder!r}"
                if not client.folder_exists(self.processed_folder):
                    client.create_folder(self.processed_folder)
        except MailboxError:
            self.close()
            raise
        except Exception as exc:  # noqa: BLE001 - every library or socket failure becomes one clear error
            self.close()
            raise self._error(step, exc) from None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - the connection may be gone already; nothing to tell
            try:
                client.shutdown()
            except Exception:  # noqa: BLE001
                pass

    def unhandled(self) -> list[int]:
        """The IMAP UIDs of the messages to read, oldest first."""
        criteria = ["NOT", "DELETED"] if self.processed_folder else ["UNSEEN", "NOT", "DELETED"]
        try:
            return sorted(int(uid) for uid in self._client.search(criteria))
        except Exception as exc:  # noqa: BLE001
            raise self._error("searching for new mail", exc) from None

    def fetch(self, uids: list[int]) -> dict[int, bytes]:
        """The raw messages (RFC 5322 bytes) of ``uids``, without marking them read."""
        out: dict[int, bytes] = {}
        try:
            for i in range(0, len(uids), FETCH_BATCH):
                chunk = uids[i : i + FETCH_BATCH]
                for uid, data in self._client.fetch(chunk, ["BODY.PEEK[]"]).items():
                    body = data.get(b"BODY[]")
                    if body is not None:
                        out[int(uid)] = bytes(body)
        except Exception as exc:  # noqa: BLE001
            raise self._error("fetching messages", exc) from None
        return out

    def done(self, uid: int, *, skipped: bool) -> None:
        """Mark ``uid`` handled: ``\\Seen`` (and ``\\Flagged`` when skipped), moved when a folder is set."""
        from imapclient import FLAGGED, SEEN

        try:
            self._client.add_flags([uid], [SEEN, FLAGGED] if skipped else [SEEN])
            if self.processed_folder:
                if self._client.has_capability("MOVE"):
                    self._client.move([uid], self.processed_folder)
                else:
                    self._client.copy([uid], self.processed_folder)
                    self._client.delete_messages([uid])
                    if self._client.has_capability("UIDPLUS"):
                        self._client.uid_expunge([uid])
                    else:
                        self._client.expunge()
        except Exception as exc:  # noqa: BLE001
            raise self._error("marking a message handled", exc) from None


def mailbox_from_settings(settings: Any = None) -> Mailbox | None:
    """The organiser mailbox of the settings, or None when ``FRONTLINE_IMAP_URL`` is unset."""
    if settings is None:
        from frontline.core.settings import get_settings

        settings = get_settings()
    url = settings.imap_url_value()
    if url is None:
        return None
    return Mailbox(parse_imap_url(url), processed_folder=settings.imap_processed_folder)
