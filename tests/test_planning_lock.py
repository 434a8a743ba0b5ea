"""Two writers of the plan or the pairings at once (two HR people running ``frontline plan``, a plan and a
pairing run, a new hire's onboarding next to ``frontline pair``), without Prefect's tag limit: the planning
lock (``models.db.planning_lock``) makes the second wait for the first one's commit and plan from its
result. On SQLite and PostgreSQL.

Each writer runs in its own thread with its own session (its own connection), as two processes would.
A rendezvous in the solver makes the race certain when there is no lock: each writer waits (up to
``RENDEZVOUS`` seconds) for the other to have read its input too before it solves and writes. With the
lock the second writer cannot read before the first commits, so the first waits out the rendezvous alone.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
from sqlmodel import select

import frontline.mentors.solver as pairing_solver
import models.db
from frontline.core import audit
from frontline.core.policy import parse_policy
from frontline.mentors import service as mentoring
from frontline.rotations import service as planning
from models import Department, Employee, MentorPairing, Rotation, session_scope
from tests.test_mentoring import AS_OF, POLICY, _company, _rotation

RENDEZVOUS = 3.0  # seconds a writer waits for the other to have read its input
PLAN_POLICY = parse_policy({"support_department": "Support", "seats_per_week": 3, "max_department_away_fraction": 0.5})


def _race(monkeypatch, module, name: str, jobs) -> list:
    """Run ``jobs`` (callables) in threads at once; the solver ``module.name`` waits at a rendezvous of all of
    them first. Returns what each job returned (or raised)."""
    barrier = threading.Barrier(len(jobs), timeout=RENDEZVOUS)
    solve = getattr(module, name)

    def meet_then_solve(*args, **kwargs):
        try:
            barrier.wait()
        except threading.BrokenBarrierError:  # the other writer could not read yet: it waits for our lock
            pass
        return solve(*args, **kwargs)

    monkeypatch.setattr(module, name, meet_then_solve)
    out: list = [None] * len(jobs)

    def run(i, job):
        try:
            out[i] = job()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    monkeypatch.setattr(module, name, solve)
    for result in out:
        if isinstance(result, BaseException):
            raise result
    return out


def _without_lock(monkeypatch):
    """The code as it was before the planning lock: a writer takes nothing before it reads."""
    monkeypatch.setattr(models.db, "planning_lock", lambda session, holder, **kw: None)


def _engineers(s, n: int, prefix: str) -> None:
    """``n`` engineers in Berlin, employee ids ``<prefix>0``.."""
    eng = s.exec(select(Department).where(Department.name == "Engineering")).one()
    for i in range(n):
        s.add(
            Employee(
                employee_id=f"{prefix}{i}",
                name=f"X{i}",
                email=f"x{i}@example.com",
                department_id=eng.id,
                hire_date=date(2020, 1, 1),
                timezone="Europe/Berlin",
                country="DE",
                languages=["en"],
            )
        )


def _planning_company(engine, n: int = 12) -> None:
    with session_scope(engine) as s:
        _company(s)
        _engineers(s, n, "x")


def _plan(engine):
    def job():
        with session_scope(engine) as s:
            return planning.plan_rotations(s, PLAN_POLICY, start=AS_OF, actor="hr")

    return job


def _pair(engine):
    def job():
        with session_scope(engine) as s:
            return mentoring.pair_mentors(s, POLICY, as_of=AS_OF, actor="hr")

    return job


@pytest.mark.parametrize("locked", [True, False], ids=["with-lock", "without-lock"])
def test_two_plan_runs_at_once_plan_everyone_once(engine, settings, monkeypatch, locked):
    if not locked:
        _without_lock(monkeypatch)
    _planning_company(engine)
    first, second = _race(monkeypatch, planning, "solve", [_plan(engine), _plan(engine)])
    with session_scope(engine) as s:
        per_person = Counter(r.employee_id for r in s.exec(select(Rotation)).all())
    if not locked:  # the race is real: both read no plan and both wrote one
        assert max(per_person.values()) == 2
        return
    assert per_person and set(per_person.values()) == {1}
    # the second planned from the first one's result: it changed nothing
    assert sorted((r.created, r.moved, r.removed) for r in (first, second)) == [
        (0, 0, 0),
        (len(per_person), 0, 0),
    ]


@pytest.mark.parametrize("locked", [True, False], ids=["with-lock", "without-lock"])
def test_two_pairing_runs_at_once_pair_each_rotation_once(engine, settings, monkeypatch, locked):
    if not locked:
        _without_lock(monkeypatch)
    with session_scope(engine) as s:
        p = _company(s)
        rotations = [_rotation(s, p[k], date(2027, 3, 1) + timedelta(weeks=i)) for i, k in enumerate(["dora", "emil"])]
    first, second = _race(monkeypatch, pairing_solver, "solve", [_pair(engine), _pair(engine)])
    with session_scope(engine) as s:
        active = Counter(p.rotation_id for p in s.exec(select(MentorPairing)).all() if p.status == "active")
    if not locked:
        assert max(active.values()) == 2
        return
    assert active == Counter({r.id: 1 for r in rotations})
    assert sorted(len(r.created) for r in (first, second)) == [0, 2]


def test_a_writer_that_waits_too_long_gives_up_naming_the_holder(engine, settings, monkeypatch):
    from frontline.core.errors import PlanningBusy
    from frontline.core.settings import get_settings
    from models.db import planning_lock

    monkeypatch.setenv("FRONTLINE_PLANNING_LOCK_WAIT", "1")
    get_settings.cache_clear()
    _planning_company(engine)
    with session_scope(engine) as holding:
        planning_lock(holding, "plan-rotations by alice@example.com")
        planning_lock(holding, "the same transaction again")  # free: already held
        t0 = time.monotonic()
        with session_scope(engine) as other:  # other writers (mail delivery, the console) do not wait for it
            audit.record(other, actor="flow:deliver-mail", action="mail.deliver")
        assert time.monotonic() - t0 < 5
        t0 = time.monotonic()
        with pytest.raises(PlanningBusy) as refused, session_scope(engine) as s:
            planning.plan_rotations(s, PLAN_POLICY, start=AS_OF, actor="bob@example.com")
        assert 0.9 < time.monotonic() - t0 < 10
    message = str(refused.value)
    assert message.startswith("plan-rotations by bob@example.com: another writer")
    assert "plan-rotations by alice@example.com" in message and "waited 1 s" in message
    assert re.search(r"(since|at) 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d", message), message
    with session_scope(engine) as s:  # released at commit: the next writer plans at once
        assert planning.plan_rotations(s, PLAN_POLICY, start=AS_OF, actor="bob@example.com").created > 0


def test_the_lock_holds_across_processes(database, settings):
    """A writer in another process waits for this one and names it (its pid) when it gives up."""
    import os
    import subprocess
    import sys

    url, engine = database
    script = (
        "import sys\n"
        "from frontline.core.errors import PlanningBusy\n"
        "from models import session_scope\n"
        "from models.db import get_engine, planning_lock\n"
        "try:\n"
        "    with session_scope(get_engine(sys.argv[1])) as s:\n"
        "        planning_lock(s, 'pair-mentors by cli', wait=float(sys.argv[2]))\n"
        "    print('taken')\n"
        "except PlanningBusy as exc:\n"
        "    print(exc)\n"
    )

    def other(wait: float) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, url, str(wait)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    with session_scope(engine) as holding:
        models.db.planning_lock(holding, "plan-rotations by alice@example.com")
        refused = other(0.5)
    assert refused.startswith("pair-mentors by cli: another writer") and "alice@example.com" in refused
    assert f"pid {os.getpid()}" in refused or "PostgreSQL pid" in refused
    assert other(0.5) == "taken"  # released at commit


def test_a_roster_import_waits_for_a_planning_run(engine, settings, monkeypatch):
    """A roster import cancels its leavers' future rotations: a plan or pairing run that read before and
    wrote after would put them back (a leaver invited). The import takes the planning lock before it
    reads, so while a planner holds it the import waits and, past the wait, stops with nothing written."""
    from frontline.core.errors import PlanningBusy
    from frontline.core.settings import get_settings
    from frontline.people.roster import import_roster
    from models.db import planning_lock
    from tests.test_roster import EXAMPLES, TODAY

    monkeypatch.setenv("FRONTLINE_PLANNING_LOCK_WAIT", "1")
    get_settings.cache_clear()
    files = [EXAMPLES / f"{k}.csv" for k in ("departments", "employees", "absences")]
    with session_scope(engine) as holding:
        planning_lock(holding, "plan-rotations by alice@example.com")
        with pytest.raises(PlanningBusy) as refused, session_scope(engine) as s:
            import_roster(s, *files, actor="bob@example.com", today=TODAY)
    assert str(refused.value).startswith("roster import by bob@example.com: another writer")
    with session_scope(engine) as s:
        assert s.exec(select(Employee)).first() is None  # nothing written
        assert import_roster(s, *files, actor="bob@example.com", today=TODAY).employees_created == 8


@pytest.fixture
def scim_client(settings, engine):
    """The app's SCIM endpoint over the test database: Departments Support (mentor M1), Sales, Engineering;
    twelve Engineering staff X0..X11 with no rotation yet."""
    from fastapi.testclient import TestClient
    from observation_factories import forget_cached_policies, write_policy

    from frontline.people.scim import create_token
    from frontline.web.app import create_app
    from tests.test_scim import company

    write_policy(settings)
    forget_cached_policies()
    with session_scope(engine) as s:
        company(s, staff=0)
        _engineers(s, 12, "X")
        _row, secret = create_token(s, "okta")
    client = TestClient(create_app(), base_url="http://frontline.test")
    client.headers["Authorization"] = f"Bearer {secret}"
    return client


def _scim_user(client, number: str) -> str:
    from tests.test_scim import CT, user

    r = client.post("/scim/v2/Users", json=user(f"{number.lower()}@example.com", number, "Engineering"), headers=CT)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _deactivate(client, scim_id: str):
    from tests.test_scim import CT

    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    return client.patch(f"/scim/v2/Users/{scim_id}", json=patch, headers=CT)


def _live_future_rotations(engine, employee_id: str) -> list[Rotation]:
    from frontline.core import clock

    with session_scope(engine) as s:
        e = s.exec(select(Employee).where(Employee.employee_id == employee_id)).one()
        return [
            r
            for r in s.exec(select(Rotation).where(Rotation.employee_id == e.id)).all()
            if r.status != "cancelled" and r.start >= clock.today()
        ]


@pytest.mark.parametrize("locked", [True, False], ids=["with-lock", "without-lock"])
def test_a_scim_deactivation_during_a_plan_run_waits_and_nothing_is_written_back(
    scim_client, engine, settings, monkeypatch, locked
):
    """A plan run has read X3 as active and is solving when Okta deactivates X3. Without the lock the
    deactivation commits at once (nothing to cancel yet) and the plan then writes X3 a rotation: a leaver
    invited. With it the deactivation waits for the plan's commit, then cancels what the plan wrote."""
    from frontline.core import clock

    if not locked:
        _without_lock(monkeypatch)
    scim_id = _scim_user(scim_client, "X3")
    solve, hold = planning.solve, 2.0
    read = threading.Event()

    def slow_solve(*args, **kwargs):
        read.set()  # the plan's input is read: X3 is active in it
        time.sleep(hold)
        return solve(*args, **kwargs)

    monkeypatch.setattr(planning, "solve", slow_solve)
    start = clock.today() + timedelta(days=14)
    planned: list = []
    runner = threading.Thread(target=lambda: planned.append(_plan_from(engine, start)), daemon=True)
    runner.start()
    assert read.wait(60)
    t0 = time.monotonic()
    answer = _deactivate(scim_client, scim_id)
    waited = time.monotonic() - t0
    runner.join(60)
    assert answer.status_code in (200, 204), answer.text
    assert planned and planned[0].created >= 12
    with session_scope(engine) as s:
        x3 = s.exec(select(Employee).where(Employee.employee_id == "X3")).one()
        assert not x3.active
        written = s.exec(select(Rotation).where(Rotation.employee_id == x3.id)).all()
    assert written  # the plan did plan X3 (it read X3 as active)
    if not locked:  # the race is real: the plan wrote X3's rotation after the deactivation
        assert waited < hold
        assert _live_future_rotations(engine, "X3")
        return
    assert waited > hold * 0.5  # it waited for the plan run's commit
    assert _live_future_rotations(engine, "X3") == []  # then cancelled what the plan wrote
    assert {r.status for r in written} == {"cancelled"}


def _plan_from(engine, start: date):
    with session_scope(engine) as s:
        return planning.plan_rotations(s, PLAN_POLICY, start=start, actor="hr")


def test_a_scim_deactivation_that_waits_too_long_is_503_with_retry_after(scim_client, engine, monkeypatch):
    """Past the web's wait (here 1 s) the identity provider is told to retry: a SCIM error with 503 and
    Retry-After (RFC 7644 keeps 409 for duplicates and version conflicts), naming the holder; nothing is
    written. A write that deactivates nobody does not wait for the lock at all."""
    from fastapi.testclient import TestClient

    import frontline.web.scim
    from frontline.web.app import create_app
    from models.db import planning_lock
    from tests.test_scim import CT

    scim_id = _scim_user(scim_client, "X4")
    monkeypatch.setattr(frontline.web.scim, "WEB_PLANNING_LOCK_WAIT", 1.0)
    client = TestClient(create_app(), base_url="http://frontline.test", headers=dict(scim_client.headers))
    with session_scope(engine) as holding:
        planning_lock(holding, "plan-rotations by alice@example.com")
        t0 = time.monotonic()
        r = _deactivate(client, scim_id)
        assert 0.9 < time.monotonic() - t0 < 10
        assert r.status_code == 503 and r.headers["Retry-After"] == "30", r.text
        body = r.json()
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == "503"
        assert "plan-rotations by alice@example.com" in body["detail"] and "retry after 30 s" in body["detail"]
        assert "FRONTLINE_PLANNING_LOCK_WAIT" not in body["detail"]  # the identity provider sets no such thing
        t0 = time.monotonic()  # a title change deactivates nobody: no wait
        title = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "Engineer"}],
        }
        assert client.patch(f"/scim/v2/Users/{scim_id}", json=title, headers=CT).status_code in (200, 204)
        assert time.monotonic() - t0 < 0.9
    with session_scope(engine) as s:
        assert s.exec(select(Employee).where(Employee.employee_id == "X4")).one().active  # nothing written
    assert _deactivate(client, scim_id).status_code in (200, 204)  # released: applied at once


class _Waits(logging.Handler):
    """Set when a writer logs that it waits for the planning lock; keeps every message logged."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if "waits for the planning lock" in record.getMessage():
            self.seen.set()


@contextmanager
def _uvicorn() -> Iterator[str]:
    """The whole app under uvicorn on loopback, in this process (one event loop, its thread pool)."""
    import uvicorn
    from mailserver import free_port

    from frontline.web.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def _paired_rotation(engine, settings) -> tuple[Rotation, str]:
    """Dora's rotation, paired with a mentor, and the path of that mentor's answer page."""
    from frontline.core.links import pairing_url

    settings.policy_path.write_text('support_department = "Support"\n', encoding="utf-8")
    with session_scope(engine) as s:
        dora = _rotation(s, _company(s)["dora"], date(2027, 3, 1))
        mentoring.pair_mentors(s, POLICY, as_of=AS_OF, actor="test")
        first = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == dora.id)).one()
        return dora, "/pairing/" + pairing_url(first.id or 0, first.mentor_id).rsplit("/", 1)[1]


def test_a_decline_waiting_for_the_planning_lock_does_not_stall_the_server(engine, settings):
    """A mentor declines (the decline re-pairs the rotation, so it takes the planning lock) while a pairing
    run holds the lock. The decline waits in a worker thread: the server keeps answering other requests
    (``/healthz``, the pairing page) at once; when the run commits, the decline is applied."""
    import httpx

    from models.db import planning_lock

    dora, path = _paired_rotation(engine, settings)
    waits = _Waits()
    logging.getLogger("frontline.planning").addHandler(waits)
    answers: list = []
    try:
        with _uvicorn() as base:
            with session_scope(engine) as holding:
                planning_lock(holding, "pair-mentors by alice@example.com")
                decline = threading.Thread(
                    target=lambda: answers.append(
                        httpx.post(base + path, data={"answer": "decline", "reason": "on leave"}, timeout=60)
                    ),
                    daemon=True,
                )
                decline.start()
                assert waits.seen.wait(30), "the decline never waited for the planning lock"
                for page in ("/healthz", path):
                    t0 = time.monotonic()
                    try:
                        status = httpx.get(base + page, timeout=5).status_code
                    except httpx.TimeoutException:
                        status = None
                    assert status == 200 and time.monotonic() - t0 < 1.5, (page, status, time.monotonic() - t0)
                assert decline.is_alive()  # still waiting for the run
            decline.join(60)
    finally:
        logging.getLogger("frontline.planning").removeHandler(waits)
    assert answers and answers[0].status_code == 200, answers and answers[0].text
    with session_scope(engine) as s:
        rows = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == dora.id).order_by(MentorPairing.id))
        assert [r.status for r in rows.all()] == ["declined", "active"]


def test_a_decline_that_waits_too_long_tells_the_mentor_to_try_again_without_internals(engine, settings, monkeypatch):
    """Past the web's wait the mentor's page says another change is running and to try again (409), not the
    command line's setting, nor who holds the lock (HR's e-mail, a process id): that goes to the log. The
    decline is not applied, and applies once the run has committed."""
    from fastapi.testclient import TestClient

    import frontline.web.auth
    from frontline.web.app import create_app
    from models.db import planning_lock

    dora, path = _paired_rotation(engine, settings)
    with session_scope(engine) as s:
        first = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == dora.id)).one()
    monkeypatch.setattr(frontline.web.auth, "WEB_PLANNING_LOCK_WAIT", 0.5)
    client = TestClient(create_app(), base_url="http://frontline.test")
    logged = _Waits()
    logging.getLogger("frontline.planning").addHandler(logged)
    try:
        with session_scope(engine) as holding:
            planning_lock(holding, "pair-mentors by alice@example.com")
            r = client.post(path, data={"answer": "decline", "reason": "on leave"})
    finally:
        logging.getLogger("frontline.planning").removeHandler(logged)
    assert r.status_code == 409, r.text
    assert "Try again in a minute" in r.text and "nothing was written" in r.text
    for internal in ("alice@example.com", "FRONTLINE_PLANNING_LOCK_WAIT", "pid"):
        assert internal not in r.text, internal
    assert any("alice@example.com" in m and "nothing was written" in m for m in logged.messages)
    with session_scope(engine) as s:
        assert s.get(MentorPairing, first.id).status == "active"  # nothing written
    assert client.post(path, data={"answer": "decline", "reason": "on leave"}).status_code == 200
    with session_scope(engine) as s:
        assert s.get(MentorPairing, first.id).status == "declined"
