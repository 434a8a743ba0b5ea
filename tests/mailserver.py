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

    def start(self) -> "SMTPServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
