"""Transports: how a rendered message leaves the outbox.

* :class:`SMTPTransport`: ``FRONTLINE_SMTP_URL``. ``smtp://[user:password@]host[:port]`` uses STARTTLS
  whenever the server offers it (``?tls=none`` disables it, ``?tls=starttls`` requires it),
  ``smtps://...`` connects with implicit TLS (port 465 by default); ``?cafile=/path/ca.pem`` trusts a
  private CA (certificates and host names are always verified). A user name and password are only ever
  sent over TLS: a server that offers no STARTTLS (or had it stripped on the way) is refused before
  login unless the URL says ``?tls=none`` explicitly (a relay on a trusted network). One connection is reused for a whole
  batch, re-opened after the server drops it. When the server advertises ``PIPELINING`` (RFC 2920),
  ``MAIL FROM``, ``RCPT TO`` and ``DATA`` go out in one write (two round trips a message instead of
  four). Sends are paced by a :class:`Pacer`: unpaced (or at most ``rate_per_second`` when set) until
  the server throttles (:func:`is_throttle`), then adaptive (halve the rate and pause on a throttling
  reply, never below the rate the server was accepting; probe upward again additively).
* :class:`FolderTransport` (the default when no SMTP URL is set): each message becomes
  ``<outbox_dir>/<hash of Message-ID>.eml``, written to a temporary file, flushed to disk (``fsync``) and
  renamed into place, so a reader never sees half a file and a re-delivery overwrites the same file
  instead of adding a copy. :meth:`FolderTransport.send_batch` writes a whole claimed batch that way and
  then syncs the folder once, so the renames are on disk before the delivery marks the batch sent (one
  commit per batch, see :mod:`frontline.mail.delivery`).

Errors: :class:`SendError` for one message (the server refused it or dropped the connection while it
was being sent; the message is retried later), :class:`TransportUnavailable` when no message can be
sent at all (cannot connect or log in; the whole batch is retried), :class:`Throttled` (a
:class:`SendError`) when the server asked to slow down: the message was not refused, it is sent again
after the pacer's pause without counting an attempt.
"""

from __future__ import annotations

import hashlib
import os
import re
import smtplib
import ssl
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from email.utils import parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

_CRLF = re.compile(rb"\r?\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")
# Files of a batch written at once: each waits for its fsync, and the fsyncs in flight together share
# the file system's journal commits (about 1 ms a file instead of 5-10 ms one after the other on ext4).
WRITERS = 8


class SendError(Exception):
    """One message could not be delivered now (``code`` is the SMTP reply code when there was one)."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class Throttled(SendError):
    """The server asked to slow down (:func:`is_throttle`): not a refusal of this message. The pacer has
    already slowed down and will pause before the next send; the message is sent again."""


class TransportUnavailable(Exception):
    """The transport cannot send anything (connection or login failed)."""


_ENHANCED_THROTTLE = re.compile(r"^\s*4\.7\.\d{1,3}\b")
_THROTTLE_WORDS = re.compile(r"rate.?limit|throttl|too many|try again later|slow down", re.IGNORECASE)


def is_throttle(code: int | None, text: str) -> bool:
    """A reply that asks the sender to slow down rather than refusing one message: a 4xx with an
    enhanced status code 4.7.x ("451 4.7.1 rate limited", "421 4.7.0 try again later"), or a 421/450/451
    without enhanced codes whose text says so (rate limit, throttled, too many, try again later, slow
    down). A plain "451 temporary failure" or "421 closing" is a per-message temporary failure, retried
    with the message's own backoff as before."""
    if code is None or not 400 <= code < 500:
        return False
    return bool(_ENHANCED_THROTTLE.match(text)) or (code in {421, 450, 451} and bool(_THROTTLE_WORDS.search(text)))


class Pacer:
    """Adaptive pacing of sends to one SMTP server (AIMD), shared by the transports of a process.

    * Until the server throttles, sends are not spaced at all, or spaced to ``ceiling`` msg/s when one is
      set (``FRONTLINE_SMTP_RATE_PER_SECOND``, an optional hard maximum).
    * On a throttling reply (:meth:`throttled`): the rate is halved from the rate actually reached (the
      attempts of the last second), but never set below what the server accepted during the last
      second (:attr:`floor`); the next send waits a pause that doubles with each throttling reply in a
      row (:data:`PAUSE`, at most :data:`MAX_PAUSE`).
    * Every second without a throttling reply the rate grows by a step of 5 % of the accepted rate
      (at least 1 msg/s): additive probing back up, capped by ``ceiling``.

    Thread-safe: concurrent senders reserve send slots under a lock and sleep outside it.
    """

    PAUSE = 0.1  # seconds after the first throttling reply in a row; doubles with each further one
    MAX_PAUSE = 30.0
    MIN_RATE = 0.1  # msg/s: a server that accepts nothing at all is still asked once every 10 s
    WINDOW = 1.0  # seconds over which the accepted rate is measured

    def __init__(self, ceiling: float | None = None):
        if ceiling is not None and ceiling <= 0:
            raise ValueError(f"SMTP rate ceiling must be a positive number of messages per second, not {ceiling}")
        self.ceiling = ceiling
        self.rate: float | None = ceiling  # current target in msg/s; None = unpaced
        self.floor = 0.0  # msg/s the server accepted in the second before its last throttling reply
        self.step = 1.0  # additive increase, msg/s per second
        self.throttles = 0  # throttling replies seen
        self.in_a_row = 0  # throttling replies since the last accepted message
        self._next_slot = 0.0  # monotonic time of the earliest next send
        self._probed_at = 0.0
        self._attempts: deque[float] = deque()
        self._accepted: deque[float] = deque()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        rate = "unpaced" if self.rate is None else f"{self.rate:.1f} msg/s"
        return f"Pacer({rate}, floor={self.floor:.1f}, throttles={self.throttles})"

    def wait(self) -> None:
        """Sleep until the next send is due (reserves that send's slot)."""
        with self._lock:
            now = time.monotonic()
            self._probe(now)
            slot = max(now, self._next_slot)
            self._next_slot = slot + (1.0 / self.rate if self.rate else 0.0)
            self._attempts.append(slot)
            self._trim(self._attempts, slot)
        if slot > now:
            time.sleep(slot - now)

    def accepted(self) -> None:
        """The server accepted a message."""
        with self._lock:
            now = time.monotonic()
            self.in_a_row = 0
            self._accepted.append(now)
            self._trim(self._accepted, now)

    def throttled(self) -> float:
        """The server asked to slow down: halve the rate (not below the accepted rate) and pause.
        Returns the pause in seconds."""
        with self._lock:
            now = time.monotonic()
            self.throttles += 1
            self.in_a_row += 1
            self._trim(self._attempts, now)
            self._trim(self._accepted, now)
            reached = len(self._attempts) / self.WINDOW
            self.floor = len(self._accepted) / self.WINDOW
            current = reached if self.rate is None else min(self.rate, reached)
            self.rate = max(current / 2, self.floor, self.MIN_RATE)
            if self.ceiling is not None:
                self.rate = min(self.rate, self.ceiling)
            self.step = max(1.0, 0.05 * self.floor)
            pause = min(self.MAX_PAUSE, self.PAUSE * 2 ** (self.in_a_row - 1))
            self._next_slot = max(self._next_slot, now + pause)
            self._probed_at = now + pause
            return pause

    def _probe(self, now: float) -> None:
        """Additive increase: ``step`` msg/s for every second since the last throttle or increase."""
        if self.rate is None or self.throttles == 0 or now <= self._probed_at:
            return
        self.rate += self.step * (now - self._probed_at)
        if self.ceiling is not None:
            self.rate = min(self.rate, self.ceiling)
        self._probed_at = now

    def _trim(self, stamps: deque[float], now: float) -> None:
        while stamps and stamps[0] <= now - self.WINDOW:
            stamps.popleft()


_pacers: dict[tuple[str, int, float | None], Pacer] = {}
_pacers_lock = threading.Lock()


def shared_pacer(host: str, port: int, ceiling: float | None) -> Pacer:
    """The process's pacer for one server: what one batch learned about the server's rate holds for the
    next batch's transport (each ``deliver-mail`` batch opens its own)."""
    with _pacers_lock:
        return _pacers.setdefault((host, port, ceiling), Pacer(ceiling))


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

    def __init__(
        self,
        url: str,
        *,
        rate_per_second: float | None = None,
        timeout: float = 30.0,
        pacer: Pacer | None = None,
        pipelining: bool = True,
    ):
        """``rate_per_second``: optional hard maximum (None or 0: none, the :class:`Pacer` adapts to the
        server); ``pacer``: share one between transports to the same server (:func:`shared_pacer`);
        ``pipelining``: use PIPELINING when the server advertises it."""
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
        self.pacer = pacer or Pacer(rate_per_second or None)
        self.pipelining = pipelining
        self._context: ssl.SSLContext | None = None
        self._smtp: smtplib.SMTP | None = None
        self.connections = 0  # how many connections this transport opened (bench and tests read it)
        self.pipelined = 0  # messages sent with PIPELINING

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

    def send(self, mime: bytes, *, mail_from: str, recipients: list[str], message_id: str) -> None:
        if self._smtp is None:
            self._smtp = self._connect()
        self.pacer.wait()
        envelope_from = parseaddr(mail_from)[1] or mail_from
        # SMTP lines end in CRLF; smtplib does not convert bare LFs in bytes (the server would see one
        # giant line and refuse it with "500 Line too long").
        wire = _CRLF.sub(b"\r\n", mime)
        try:
            if self._can_pipeline(self._smtp, envelope_from, recipients):
                refused = self._send_pipelined(self._smtp, envelope_from, recipients, wire)
                self.pipelined += 1
            else:
                refused = self._smtp.sendmail(envelope_from, recipients, wire)
        except smtplib.SMTPServerDisconnected as exc:
            # The connection is gone (idle timeout or the server hung up). Whether the message got through
            # is unknown only if the drop came after DATA; the caller retries it later (at-least-once).
            self._drop()
            raise SendError(f"connection dropped: {exc or 'server disconnected'}") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise self._refusal("recipient refused: ", code, _decode(text)) from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            self._reset()
            raise self._refusal("", exc.smtp_code, _decode(exc.smtp_error)) from exc
        except smtplib.SMTPResponseException as exc:
            self._drop()
            raise self._refusal("", exc.smtp_code, _decode(exc.smtp_error)) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise SendError(f"SMTP error: {exc}") from exc
        self.pacer.accepted()
        if refused:  # some (not all) recipients refused: the accepted ones have it; say who did not
            raise_partial = "; ".join(f"{r}: {c} {_decode(t)}" for r, (c, t) in refused.items())
            raise PartialDelivery(f"some recipients refused: {raise_partial}")

    def _refusal(self, prefix: str, code: int, text: str) -> SendError:
        """The error for a refusal: :class:`Throttled` (and the pacer slows down) when the server asks
        to slow down, :class:`SendError` otherwise."""
        if is_throttle(code, text):
            pause = self.pacer.throttled()
            return Throttled(f"{prefix}{code} {text} (throttled: pausing {pause:.2f} s)", code)
        return SendError(f"{prefix}{code} {text}", code)

    def _can_pipeline(self, smtp: smtplib.SMTP, envelope_from: str, recipients: list[str]) -> bool:
        return (
            self.pipelining
            and bool(recipients)
            and smtp.has_extn("pipelining")
            and envelope_from.isascii()
            and all(r.isascii() for r in recipients)
        )

    @staticmethod
    def _send_pipelined(
        smtp: smtplib.SMTP, envelope_from: str, recipients: list[str], wire: bytes
    ) -> dict[str, tuple[int, bytes]]:
        """RFC 2920: ``MAIL FROM``, every ``RCPT TO`` and ``DATA`` in one write, then their replies, then
        the message and its reply. Raises the same smtplib errors as ``sendmail`` (and leaves the
        connection reset or closed as it does); returns the refused recipients when some were accepted."""
        size = f" SIZE={len(wire)}" if smtp.has_extn("size") else ""
        commands = [f"MAIL FROM:<{envelope_from}>{size}", *(f"RCPT TO:<{r}>" for r in recipients), "DATA"]
        smtp.send("".join(f"{command}\r\n" for command in commands))
        replies = []
        for _command in commands:
            replies.append(smtp.getreply())
            if replies[-1][0] == 421:  # the server is closing the connection: no more replies come
                smtp.close()
                break
        mail, rcpts, data = replies[0], replies[1 : len(recipients) + 1], replies[-1]
        if mail[0] != 250 or data[0] != 354:
            if data[0] == 354:  # DATA accepted although MAIL/RCPT failed: hang up rather than send anything
                smtp.close()
            elif smtp.sock is not None:
                smtp.rset()
            if mail[0] != 250:
                raise smtplib.SMTPSenderRefused(mail[0], mail[1], envelope_from)
            refused = {r: reply for r, reply in zip(recipients, rcpts, strict=False) if reply[0] not in (250, 251)}
            if len(refused) == len(recipients):
                raise smtplib.SMTPRecipientsRefused(refused)
            raise smtplib.SMTPDataError(data[0], data[1])
        body = _LEADING_DOT.sub(b"..", wire)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        smtp.send(body + b".\r\n")
        code, text = smtp.getreply()
        if code != 250:
            if code == 421:
                smtp.close()
            else:
                smtp.rset()
            raise smtplib.SMTPDataError(code, text)
        return {r: reply for r, reply in zip(recipients, rcpts, strict=True) if reply[0] not in (250, 251)}

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
        transport = SMTPTransport(url, rate_per_second=settings.smtp_rate_per_second)
        transport.pacer = shared_pacer(transport.host, transport.port, settings.smtp_rate_per_second)
        return transport
    return FolderTransport(settings.outbox_dir)
