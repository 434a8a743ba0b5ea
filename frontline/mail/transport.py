"""Transports: how a rendered message leaves the outbox.

* :class:`SMTPTransport`: ``FRONTLINE_SMTP_URL``. ``smtp://[user:password@]host[:port]`` uses STARTTLS
  whenever the server offers it (``?tls=none`` disables it, ``?tls=starttls`` requires it),
  ``smtps://...`` connects with implicit TLS (port 465 by default); ``?cafile=/path/ca.pem`` trusts a
  private CA (certificates and host names are always verified). A user name and password are only ever
  sent over TLS: a server that offers no STARTTLS (or had it stripped on the way) is refused before
  login unless the URL says ``?tls=none`` explicitly (a relay on a trusted network). One connection is reused for a whole
  batch, re-opened after the server drops it, and sends are spaced to ``rate_per_second``.
* :class:`FolderTransport` (the default when no SMTP URL is set): each message becomes
  ``<outbox_dir>/<hash of Message-ID>.eml``, written to a temporary file, flushed to disk (``fsync``) and
  renamed into place, so a reader never sees half a file and a re-delivery overwrites the same file
  instead of adding a copy. :meth:`FolderTransport.send_batch` writes a whole claimed batch that way and
  then syncs the folder once, so the renames are on disk before the delivery marks the batch sent (one
  commit per batch, see :mod:`frontline.mail.delivery`).

Errors: :class:`SendError` for one message (the server refused it or dropped the connection while it
was being sent; the message is retried later), :class:`TransportUnavailable` when no message can be
sent at all (cannot connect or log in; the whole batch is retried).
"""

from __future__ import annotations

import hashlib
import os
import re
import smtplib
import ssl
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

_CRLF = re.compile(rb"\r?\n")
# Files of a batch written at once: each waits for its fsync, and the fsyncs in flight together share
# the file system's journal commits (about 1 ms a file instead of 5-10 ms one after the other on ext4).
WRITERS = 8


class SendError(Exception):
    """One message could not be delivered now (``code`` is the SMTP reply code when there was one)."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class TransportUnavailable(Exception):
    """The transport cannot send anything (connection or login failed)."""


class Transport(Protocol):
    name: str

    def send(self, mime: bytes, *, mail_from: str, recipients: list[str], message_id: str) -> None: ...

    def close(self) -> None: ...


def eml_name(message_id: str) -> str:
    """File name of a message in the outbox folder: stable per Message-ID."""
    return hashlib.sha256(message_id.strip().encode()).hexdigest()[:32] + ".eml"


class FolderTransport:
    """Messages as ``.eml`` files in one folder (see the module docstring).

    Durability: a file's bytes are ``fsync``-ed before its rename, and the folder is ``fsync``-ed after
    the renames (once per :meth:`send_batch`, once per :meth:`send`), so when either returns the files
    survive a power loss under their final names. The delivery records ``sent`` only after that, so a
    crash at any point leaves the row ``sending`` and its next delivery rewrites the same file name (from
    the Message-ID) with the same bytes: nothing lost, no second copy."""

    name = "folder"

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)

    def send(self, mime: bytes, *, mail_from: str, recipients: list[str], message_id: str) -> None:
        self.send_batch([(message_id, mime)])

    def send_batch(self, messages: list[tuple[str, bytes]]) -> None:
        """Write every ``(message_id, mime)`` as its file (temporary file, fsync, rename), then sync the
        folder once. Raises :class:`TransportUnavailable` when the folder cannot be written (files
        already renamed stay: each is complete, and rewriting it later gives the same file)."""
        if not messages:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if len(messages) == 1:
                self._write(self.folder / eml_name(messages[0][0]), messages[0][1])
            else:  # fsyncs in flight together share the file system's journal commits
                with ThreadPoolExecutor(WRITERS, thread_name_prefix="outbox-folder") as pool:
                    list(pool.map(lambda m: self._write(self.folder / eml_name(m[0]), m[1]), messages))
            _sync_folder(self.folder)
        except OSError as exc:
            raise TransportUnavailable(f"cannot write to the outbox folder {self.folder}: {exc}") from exc

    def _write(self, target: Path, mime: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(mime)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def close(self) -> None:
        pass


def _sync_folder(folder: Path) -> None:
    """``fsync`` the folder itself, so the renames into it are on disk (POSIX; a no-op where a
    directory cannot be opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except (PermissionError, IsADirectoryError):  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SMTPTransport:
    name = "smtp"

    def __init__(self, url: str, *, rate_per_second: float = 10.0, timeout: float = 30.0):
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"}:
            raise ValueError(f"SMTP URL must start with smtp:// or smtps://, not {parts.scheme!r}://")
        if not parts.hostname:
            raise ValueError("SMTP URL has no host (expected smtp://[user:password@]host[:port])")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.implicit_tls = parts.scheme == "smtps"
        self.tls = query.get("tls", "implicit" if self.implicit_tls else "auto")
        if self.tls not in {"auto", "none", "starttls", "implicit"}:
            raise ValueError(f"SMTP URL: tls={self.tls!r} is not one of auto, none, starttls")
        self.host = parts.hostname
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.cafile = query.get("cafile")  # a private CA for an internal relay (certificates are always verified)
        self.timeout = timeout
        self.min_interval = 1.0 / rate_per_second if rate_per_second > 0 else 0.0
        self._context: ssl.SSLContext | None = None
        self._smtp: smtplib.SMTP | None = None
        self._last_send = 0.0
        self.connections = 0  # how many connections this transport opened (bench and tests read it)

    def __repr__(self) -> str:  # never show the password
        return f"SMTPTransport({'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port}, tls={self.tls})"

    @property
    def context(self) -> ssl.SSLContext:
        """Certificate-verifying TLS context, created on first use (loading the CA store takes time)."""
        if self._context is None:
            self._context = ssl.create_default_context(cafile=self.cafile)
        return self._context

    def _connect(self) -> smtplib.SMTP:
        try:
            if self.implicit_tls:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self.context, local_hostname="frontline"
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout, local_hostname="frontline")
            smtp.ehlo()
            encrypted = self.implicit_tls
            if not self.implicit_tls and self.tls != "none":
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=self.context)
                    smtp.ehlo()
                    encrypted = True
                elif self.tls == "starttls":
                    smtp.close()
                    raise TransportUnavailable(f"{self.host}:{self.port} does not offer STARTTLS (tls=starttls)")
            if self.username:
                if not encrypted and self.tls != "none":
                    smtp.close()
                    raise TransportUnavailable(
                        f"{self.host}:{self.port} offers no STARTTLS: refusing to send the SMTP password "
                        "unencrypted (use smtps://, or add ?tls=none to the URL only for a relay on a trusted network)"
                    )
                smtp.login(self.username, self.password or "")
        except TransportUnavailable:
            raise
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportUnavailable(f"cannot connect to SMTP {self.host}:{self.port}: {exc}") from exc
        self.connections += 1
        return smtp

    def _throttle(self) -> None:
        if self.min_interval:
            wait = self._last_send + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._last_send = time.monotonic()

    def send(self, mime: bytes, *, mail_from: str, recipients: list[str], message_id: str) -> None:
        if self._smtp is None:
            self._smtp = self._connect()
        self._throttle()
        envelope_from = parseaddr(mail_from)[1] or mail_from
        # SMTP lines end in CRLF; smtplib does not convert bare LFs in bytes (the server would see one
        # giant line and refuse it with "500 Line too long").
        wire = _CRLF.sub(b"\r\n", mime)
        try:
            refused = self._smtp.sendmail(envelope_from, recipients, wire)
        except smtplib.SMTPServerDisconnected as exc:
            # The connection is gone (idle timeout or the server hung up). Whether the message got through
            # is unknown only if the drop came after DATA; the caller retries it later (at-least-once).
            self._drop()
            raise SendError(f"connection dropped: {exc or 'server disconnected'}") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise SendError(f"recipient refused: {code} {_decode(text)}", code) from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            self._reset()
            raise SendError(f"{exc.smtp_code} {_decode(exc.smtp_error)}", exc.smtp_code) from exc
        except smtplib.SMTPResponseException as exc:
            self._drop()
            raise SendError(f"{exc.smtp_code} {_decode(exc.smtp_error)}", exc.smtp_code) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise SendError(f"SMTP error: {exc}") from exc
        if refused:  # some (not all) recipients refused: the accepted ones have it; say who did not
            raise_partial = "; ".join(f"{r}: {c} {_decode(t)}" for r, (c, t) in refused.items())
            raise PartialDelivery(f"some recipients refused: {raise_partial}")

    def _reset(self) -> None:
        try:
            if self._smtp is not None:
                self._smtp.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.close()
            except OSError:
                pass

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


class PartialDelivery(Exception):
    """Accepted for some recipients, refused for others (the message counts as sent; the error is kept)."""


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def transport_from_settings(settings=None) -> Transport:
    """SMTP when ``FRONTLINE_SMTP_URL`` is set, otherwise the outbox folder."""
    if settings is None:
        from frontline.core.settings import get_settings

        settings = get_settings()
    url = settings.smtp_url_value()  # includes the password from a Prefect Secret block when configured
    if url:
        return SMTPTransport(url, rate_per_second=settings.smtp_rate_per_second)
    return FolderTransport(settings.outbox_dir)
