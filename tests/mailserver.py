"""A real SMTP server on loopback (aiosmtpd) that records what it accepts and can misbehave on demand.

``faults`` maps a Message-ID to the list of things to do on its next attempts, consumed one per attempt:
``"421"`` / ``"451"`` (temporary rejection), ``"550"`` / ``"554"`` (permanent-looking rejection), a
whole reply (``"451 4.7.1 rate limited"``), or ``"drop"`` (close the connection in the middle of DATA without answering).

For the fault-injection suite (``tests/test_faults.py``) the handler can also be slow (``delay`` seconds
before answering each message, ``slow`` for chosen Message-IDs: the message counts as accepted when the
answer goes out, as on a real server that has queued it), misbehave at random (``random_faults``: a probability and a seed; each
attempt then draws one of the actions above), and the server can be killed and restarted on the same
port (:meth:`SMTPServer.kill`, :meth:`SMTPServer.restart`) while a batch is being sent.

Like Postfix or Exchange it advertises ``PIPELINING`` (``pipelining = False`` to leave it out; aiosmtpd
reads commands one line at a time, so pipelined commands work either way). ``limit(n, reply)`` makes it a
throttling relay: above ``n`` messages accepted in the last second it answers ``reply`` (e.g.
``"451 4.7.1 rate limited"``) and counts it in ``throttled``.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections import deque
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RecordingHandler:
    def __init__(self):
        self.messages = []
        self.envelopes = []
        self.raw: list[bytes] = []
        self.faults: dict[str, list[str]] = {}
        self.attempts = 0
        self.connections = 0
        self.delay = 0.0
        self.slow: dict[str, float] = {}  # Message-ID -> seconds, instead of ``delay`` for that message
        self.random_faults: tuple[float, random.Random] | None = None
        self.accepted = threading.Event()  # set at every accepted message (tests wait on it)
        self.on_accept = None  # called with the number of messages accepted so far (e.g. to kill the server)
        self.pipelining = True  # advertise PIPELINING in the EHLO reply
        self.rate_limit: tuple[int, str] | None = None  # (messages per second, throttling reply)
        self.throttled = 0  # throttling replies sent
        self.accept_times: list[float] = []  # monotonic time of each accepted message
        self._window: deque[float] = deque()

    def limit(self, per_second: int, reply: str = "451 4.7.1 rate limited, slow down") -> None:
        """Answer ``reply`` to a message when ``per_second`` were accepted in the last second."""
        self.rate_limit = (per_second, reply)

    def misbehave(self, rate: float, seed: int, actions: tuple[str, ...] = ("421", "451", "550", "554", "drop")):
        """From now on, each attempt fails with probability ``rate`` with one of ``actions`` (seeded)."""
        self.random_faults = (rate, random.Random(seed))
        self._actions = actions

    def _next_fault(self, message_id: str) -> str | None:
        plan = self.faults.get(message_id)
        if plan:
            return plan.pop(0)
        if self.random_faults is not None:
            rate, rng = self.random_faults
            if rng.random() < rate:
                return rng.choice(self._actions)
        return None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.connections += 1
        session.host_name = hostname
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        raw = envelope.original_content or envelope.content
        msg = message_from_bytes(raw, policy=policy.default)
        message_id = str(msg.get("Message-ID", "")).strip()
        delay = self.slow.get(message_id, self.delay)
        if delay:
            await asyncio.sleep(delay)
        if self.rate_limit is not None:
            per_second, reply = self.rate_limit
            now = time.monotonic()
            while self._window and self._window[0] <= now - 1.0:
                self._window.popleft()
            if len(self._window) >= per_second:
                self.throttled += 1
                return reply  # after a 421 the client hangs up (as it must)
            self._window.append(now)
        action = self._next_fault(message_id)
        if action is not None:
            if action == "drop":
                server.transport.close()
                return "421 closing"  # never reaches the client: the connection is gone
            if " " in action:  # a whole reply, e.g. "554 5.7.1 rate limit exceeded, message refused"
                return action
            return f"{action} simulated {'temporary' if action.startswith('4') else 'permanent'} failure"
        self.messages.append(msg)
        self.raw.append(raw)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.accept_times.append(time.monotonic())
        self.accepted.set()
        if self.on_accept is not None:
            self.on_accept(len(self.messages))
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]).strip() for m in self.messages]


class SMTPServer:
    def __init__(self):
        self.handler = RecordingHandler()
        self.port = free_port()
        self.controller: Controller | None = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, server_hostname="localhost", ready_timeout=5.0
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?tls=none"

    def start(self) -> SMTPServer:
        assert self.controller is not None
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def kill(self) -> None:
        """Stop listening and cut every open connection at once (messages in flight get no answer)."""
        self.stop()

    def restart(self) -> SMTPServer:
        """Listen again on the same port with the same handler (what it recorded is kept)."""
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, server_hostname="localhost", ready_timeout=5.0
        )
        return self.start()

    def __enter__(self) -> SMTPServer:  # ``with SMTPServer() as server:`` runs it for the block
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def make_certificate(directory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (also its own CA); returns (cert.pem, key.pem) paths."""
    import datetime
    import ipaddress
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = Path(directory)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


class TLSServer(SMTPServer):
    """STARTTLS (``implicit=False``, STARTTLS required, AUTH required) or implicit TLS (``implicit=True``)."""

    def __init__(self, cert: str, key: str, *, implicit: bool, user: str = "ops@corp", password: str = "p:ss w0rd"):
        import ssl

        from aiosmtpd.smtp import AuthResult

        self.handler = RecordingHandler()
        self.port = free_port()
        self.logins: list[str] = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            if ok:
                self.logins.append(auth_data.login.decode())
            return AuthResult(success=ok)

        common = dict(
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="localhost",
            ready_timeout=5.0,
            authenticator=authenticator,
            auth_required=True,
        )
        if implicit:
            # the whole connection is TLS; aiosmtpd only counts STARTTLS as TLS for AUTH, so lift that check
            self.controller = Controller(self.handler, ssl_context=ctx, auth_require_tls=False, **common)
        else:
            self.controller = Controller(self.handler, tls_context=ctx, require_starttls=True, **common)


class VirtualClock:
    """Stands in for the transport module's clock (``monotonic``/``sleep``): time passes only when told or
    while the sender sleeps, so pacing is checked without wall-clock timing."""

    def __init__(self) -> None:
        self.now, self.sleeps = 1000.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
