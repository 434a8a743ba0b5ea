"""A real SMTP server on loopback (aiosmtpd) that records what it accepts and can misbehave on demand.

``faults`` maps a Message-ID to the list of things to do on its next attempts, consumed one per attempt:
``"421"`` / ``"451"`` (temporary rejection), ``"550"`` / ``"554"`` (permanent-looking rejection), or
``"drop"`` (close the connection in the middle of DATA without answering).
"""

from __future__ import annotations

import socket
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

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        raw = envelope.original_content or envelope.content
        msg = message_from_bytes(raw, policy=policy.default)
        plan = self.faults.get(str(msg.get("Message-ID", "")).strip())
        if plan:
            action = plan.pop(0)
            if action == "drop":
                server.transport.close()
                return "421 closing"  # never reaches the client: the connection is gone
            return f"{action} simulated {'temporary' if action.startswith('4') else 'permanent'} failure"
        self.messages.append(msg)
        self.raw.append(raw)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]).strip() for m in self.messages]


class SMTPServer:
    def __init__(self):
        self.handler = RecordingHandler()
        self.port = free_port()
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, server_hostname="localhost", ready_timeout=5.0
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?tls=none"

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

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
