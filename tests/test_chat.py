"""Chat notifications through Apprise (issue 15): Apprise's real Slack and Teams (Power Automate workflows)
plugins post to a recording HTTPS endpoint on loopback; queued with the event, sent once, retried with
backoff, no secrets shown, mentions in user text neutralised."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlmodel import select

from frontline.core.policy import Chat
from models import ChatMessage, Department, Employee, Observation, Rotation, session_scope
from tests.observation_factories import write_policy

SLACK_TOKENS = "T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"


class Recorder:
    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []
        self.lookups: list[str] = []
        self.status = 200
        self.slack_users = {"ron@example.com": "U0RON"}  # Slack's users.lookupByEmail directory


def _certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def endpoint(tmp_path, monkeypatch) -> Iterator[tuple[str, Recorder]]:
    """A recording HTTPS webhook endpoint; Apprise's Slack plugin (whose host is fixed) is pointed at it."""
    import apprise.plugins.slack as slack

    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            recorder.posts.append((self.path, json.loads(body or b"{}")))
            self.send_response(recorder.status)
            if self.path.startswith("/api/"):  # Slack's Web API answers JSON, ok or not
                self._json(
                    {"ok": recorder.status == 200, "ts": "1.2"}
                    | ({} if recorder.status == 200 else {"error": "invalid_auth"})
                )
                return
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if recorder.status == 200 else b"invalid_token")

        def do_GET(self) -> None:  # Slack's users.lookupByEmail
            from urllib.parse import parse_qs, urlsplit

            email = parse_qs(urlsplit(self.path).query).get("email", [""])[0]
            recorder.lookups.append(email)
            user = recorder.slack_users.get(email)
            self.send_response(200)
            self._json({"ok": True, "user": {"id": user}} if user else {"ok": False, "error": "users_not_found"})

        def _json(self, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*_certificate(tmp_path))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(slack.NotifySlack, "webhook_url", f"https://{base}/services")
    monkeypatch.setattr(slack.NotifySlack, "api_url", f"https://{base}/api/{{}}")
    try:
        yield base, recorder
    finally:
        server.shutdown()
        server.server_close()


def _company(engine) -> dict[str, int]:
    with session_scope(engine) as s:
        finance = Department(name="Finance", head_name="Fin Head", head_email="fin@example.com")
        support = Department(name="Support", head_name="Sue", head_email="sue@example.com")
        s.add_all([finance, support])
        s.flush()
        ron = Employee(
            employee_id="E1",
            name="Ron Rotator",
            email="ron@example.com",
            department_id=finance.id,
            hire_date=date(2020, 1, 1),
            timezone="Europe/Berlin",
            country="DE",
        )
        s.add(ron)
        s.flush()
        start = date.today() + timedelta(days=28 - date.today().weekday())
        rot = Rotation(
            employee_id=ron.id,
            start=start,
            end=start + timedelta(days=27),
            kind="cycle",
            due=start,
            status="invited",
            announced_start=start,
            sequence=1,
        )
        s.add(rot)
        s.flush()
        obs = Observation(
            rotator_id=ron.id,
            rotation_id=rot.id,
            text="Refunds fail for cards <!channel> @here ping",
            impact=5,
            customer_count=12,
            product_area="billing",
            category="bug",
            target_department_id=finance.id,
            urgent=True,
        )
        s.add(obs)
        s.flush()
        assert ron.id and rot.id and obs.id and finance.id
        return {"ron": ron.id, "rotation": rot.id, "observation": obs.id, "finance": finance.id}


def _chat_policy(settings, base: str, *, finance: bool = True, hr: bool = True) -> Chat:
    from frontline.core.policy import load_policy

    lines = ["[chat]"]
    if hr:
        lines.append(f'hr = "workflows://{base}/hr-flow/SIGNATURE-abc?verify=no"')
    if finance:
        lines += ["[chat.departments]", f'Finance = "slack://{SLACK_TOKENS}/?verify=no"']
    write_policy(settings, "\n".join(lines) + "\n")
    return load_policy().chat


def test_an_urgent_observation_reaches_the_departments_slack_once(engine, settings, endpoint):
    from frontline.chat.service import deliver_due
    from frontline.observations.escalation import send_escalation

    base, recorder = endpoint
    ids = _company(engine)
    chat = _chat_policy(settings, base)
    with session_scope(engine) as s:
        obs = s.get(Observation, ids["observation"])
        assert obs is not None
        assert send_escalation(s, obs, level=1) is True
        assert send_escalation(s, obs, level=1) is False  # the mails were queued: nothing new, no second chat
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        done = deliver_due(s, chat, now)
        assert (done.sent, done.failed) == (1, 0)
        assert deliver_due(s, chat, now + timedelta(minutes=5)).sent == 0  # sent once
    assert len(recorder.posts) == 1
    path, body = recorder.posts[0]
    assert path == f"/services/{SLACK_TOKENS}"  # Slack's incoming-webhook path, Slack's JSON
    text = json.dumps(body)
    assert "Urgent observation for Finance" in text and "Refunds fail for cards" in text
    assert "<!channel>" not in text and "@here" not in text  # mentions in user text are neutralised
    assert f"/console/observations/{ids['observation']}" in text


def test_a_change_request_reaches_hrs_teams_channel(engine, settings, endpoint):
    from frontline.chat.service import deliver_due
    from frontline.core.policy import load_policy
    from frontline.rotations.requests import submit

    base, recorder = endpoint
    ids = _company(engine)
    chat = _chat_policy(settings, base)
    with session_scope(engine) as s:
        req = submit(
            s,
            load_policy(),
            ids["rotation"],
            kind="cannot_do",
            requester_email="ron@example.com",
            requester_role="rotator",
            reason="Parental leave starts that week",
        )
        request_id = req.id
    with session_scope(engine) as s:
        assert deliver_due(s, chat, datetime.now(UTC)).sent == 1
    path, body = recorder.posts[0]
    assert path.startswith("/workflows/hr-flow/triggers/manual/paths/invoke")  # Power Automate's trigger
    card = json.dumps(body)
    assert body["type"] == "message" and "AdaptiveCard" in card
    assert f"Change request {request_id} (cannot do) for Ron Rotator" in card and "Parental leave" in card


def test_a_failing_channel_is_retried_with_backoff_and_shows_in_status(engine, settings, endpoint):
    from frontline.chat.service import deliver_due
    from frontline.observations.escalation import send_escalation
    from frontline.operations.status import collect_status

    base, recorder = endpoint
    ids = _company(engine)
    chat = _chat_policy(settings, base)
    with session_scope(engine) as s:
        obs = s.get(Observation, ids["observation"])
        assert obs is not None
        send_escalation(s, obs, level=1)
    recorder.status = 403
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        done = deliver_due(s, chat, now)
        assert (done.sent, done.failed) == (0, 1)
        assert SLACK_TOKENS not in json.dumps(done.errors) and "TIiajkdnl" not in json.dumps(done.errors)
        message = s.exec(select(ChatMessage)).one()
        assert (message.state, message.attempts) == ("pending", 1) and message.next_attempt_at > now
        assert deliver_due(s, chat, now + timedelta(seconds=30)).failed == 0  # not due yet
        report = collect_status(s, now=now + timedelta(seconds=1), with_prefect=False)
    failing = report["stuck"]["connectors_failing"]
    assert [f["connector"] for f in failing] == ["chat:department:Finance"] and "TIiajkdnl" not in str(report)
    recorder.status = 200
    with session_scope(engine) as s:
        assert deliver_due(s, chat, now + timedelta(minutes=2)).sent == 1
        report = collect_status(s, now=now + timedelta(minutes=3), with_prefect=False)
    assert report["stuck"]["connectors_failing"] == []
    assert len(recorder.posts) == 2


def test_no_channel_no_message_and_a_removed_channel_drops_its_queue(engine, settings, endpoint):
    from frontline.chat.service import deliver_due
    from frontline.observations.escalation import send_escalation

    base, recorder = endpoint
    ids = _company(engine)
    _chat_policy(settings, base, finance=False)
    with session_scope(engine) as s:
        obs = s.get(Observation, ids["observation"])
        assert obs is not None
        send_escalation(s, obs, level=1)
        assert s.exec(select(ChatMessage)).all() == []
    chat = _chat_policy(settings, base)
    with session_scope(engine) as s:
        obs = s.get(Observation, ids["observation"])
        assert obs is not None
        send_escalation(s, obs, level=2)
        assert len(s.exec(select(ChatMessage)).all()) == 1
    with session_scope(engine) as s:
        done = deliver_due(s, Chat(hr=chat.hr), datetime.now(UTC))  # Finance's channel was taken out
        assert done.dropped == 1 and s.exec(select(ChatMessage)).one().state == "dropped"
    assert recorder.posts == []


SLACK_BOT = "xoxb-1234-1234-4ddbc191d40ee098cbaae6f3523ada2d"


def _people_policy(settings, *, mail_too: bool = True) -> Chat:
    from frontline.core.policy import load_policy

    lines = ["[chat]", f'people = "slack://{SLACK_BOT}/{{email}}?verify=no"']
    if not mail_too:
        lines.append("mail_too = false")
    write_policy(settings, "\n".join(lines) + "\n")
    return load_policy().chat


def _announced(engine, rotation_id: int) -> date:
    with session_scope(engine) as s:
        rot = s.get(Rotation, rotation_id)
        assert rot is not None
        rot.announced_state = "invited"
        s.add(rot)
        return rot.start


def _reminders(engine, chat: Chat, day: date) -> dict[str, int]:
    from frontline.calendar.invites import process_reminders, rotations_for_reminders

    with session_scope(engine) as s:
        ids = rotations_for_reminders(s, day, [7, 1])
        return process_reminders(s, ids, as_of=day, days_before=[7, 1], chat=chat)


def _mail_subjects(engine) -> list[str]:
    from models import OutboundMessage

    with session_scope(engine) as s:
        return [m.subject for m in s.exec(select(OutboundMessage)).all()]


def test_a_rotator_is_reminded_in_slack_by_their_work_email_and_by_mail(engine, settings, endpoint):
    from frontline.chat.service import deliver_due

    base, recorder = endpoint
    ids = _company(engine)
    start = _announced(engine, ids["rotation"])
    chat = _people_policy(settings)
    counts = _reminders(engine, chat, start - timedelta(days=7))
    assert (counts["reminders"], counts["chats"]) == (1, 1)
    assert _reminders(engine, chat, start - timedelta(days=7))["chats"] == 0  # the same reminder: not again
    assert [x for x in _mail_subjects(engine) if "starts in 7 days" in x]  # mail still goes (mail_too)
    with session_scope(engine) as s:
        done = deliver_due(s, chat, datetime.now(UTC))
    assert (done.sent, done.failed) == (1, 0) and recorder.lookups == ["ron@example.com"]
    path, body = recorder.posts[0]
    assert path == "/api/chat.postMessage" and body["channel"] == "U0RON"  # a direct message to Ron
    text = json.dumps(body)
    assert "Your support rotation starts in 7 days" in text and "/observe/" in text


def test_mail_too_false_tells_the_rotator_in_chat_only_and_never_twice(engine, settings, endpoint):
    base, recorder = endpoint
    ids = _company(engine)
    start = _announced(engine, ids["rotation"])
    chat = _people_policy(settings, mail_too=False)
    counts = _reminders(engine, chat, start - timedelta(days=7))
    assert (counts["reminders"], counts["chats"]) == (0, 1)
    assert _reminders(engine, chat, start - timedelta(days=7)) == counts | {"chats": 0}
    assert not [x for x in _mail_subjects(engine) if "starts in" in x]
    with session_scope(engine) as s:
        assert [m.idempotency_key for m in s.exec(select(ChatMessage)).all()] == [
            f"chat:reminder:{ids['rotation']}:{start.isoformat()}:7"
        ]


def test_a_person_slack_does_not_know_or_who_left_is_not_messaged_and_the_token_is_never_shown(
    engine, settings, endpoint
):
    from frontline.chat.service import deliver_due
    from frontline.operations.status import collect_status

    base, recorder = endpoint
    ids = _company(engine)
    start = _announced(engine, ids["rotation"])
    chat = _people_policy(settings)
    _reminders(engine, chat, start - timedelta(days=7))
    recorder.slack_users = {}  # Slack has no user with Ron's address
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        done = deliver_due(s, chat, now)
        assert (
            done.failed == 1 and SLACK_BOT not in json.dumps(done.errors) and "4ddbc191" not in json.dumps(done.errors)
        )
        report = collect_status(s, now=now + timedelta(seconds=1), with_prefect=False)
    assert [f["connector"] for f in report["stuck"]["connectors_failing"]] == ["chat:people"]
    assert "4ddbc191" not in str(report) and recorder.posts == []
    with session_scope(engine) as s:
        ron = s.get(Employee, ids["ron"])
        assert ron is not None
        ron.active = False
        s.add(ron)
    with session_scope(engine) as s:
        done = deliver_due(s, chat, now + timedelta(hours=2))
        assert done.dropped == 1 and s.exec(select(ChatMessage)).one().state == "dropped"
    assert recorder.posts == []


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        ('people = "slack://xoxb-1-2-abc/"', "needs {email}"),
        ("mail_too = false", "needs chat.people"),
        ('people = "just text {email}"', "not an Apprise URL"),
    ],
)
def test_a_chat_policy_that_would_tell_nobody_is_refused(toml, error):
    import tomllib

    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=error):
        Chat.model_validate(tomllib.loads(toml))
