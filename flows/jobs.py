"""The body of every job the CLI runs, as plain functions: no Prefect import here.

Each flow module (``flows/plan.py``, ...) wraps these: its tasks are the *step* functions below under
Prefect's ``@task`` (retries, tags, names) and its flow calls the *job* function below with those tasks
as the steps. :mod:`flows.runner` calls the same job functions with the plain steps when a command runs
a job without Prefect (no server configured: a direct run recorded in Frontline's audit; a server
configured: the run, its steps and artifacts recorded there through its API). So there is one body per
job, whichever way it runs, and the scheduled deployments in ``prefect.yaml`` stay real Prefect flows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from flows.common import Audit, counts_table, report, run_logger

if TYPE_CHECKING:
    from frontline.core.errors import RosterError
    from frontline.core.policy import TimeOff, TimeOffFeed
    from frontline.people.roster import ImportResult
    from frontline.people.time_off import TimeOffResult


class JobFailed(Exception):
    """A job that did part of its work and failed the rest: ``data`` is what it did (a flow returns it in
    its Failed state; a command prints it before the errors)."""

    def __init__(self, message: str, data: Any):
        super().__init__(message)
        self.data = data


# --- plan-rotations --------------------------------------------------------------------------------

PLAN_FIGURES = (
    "horizon_start",
    "weeks",
    "dry_run",
    "planned",
    "new_hires",
    "late",
    "unplaced_count",
    "created",
    "moved",
    "kept",
    "removed",
    "fixed",
    "objective",
    "lower_bound",
    "gap",
    "solve_seconds",
)


def solve_plan(start: date | None, weeks: int, dry_run: bool) -> dict:
    from frontline.core.policy import load_policy
    from frontline.rotations.service import plan_rotations as plan
    from models import session_scope

    policy = load_policy()
    with session_scope() as session:
        result = plan(session, policy, start=start, weeks=weeks, dry_run=dry_run, actor="flow:plan-rotations")
    return {
        "summary": result.summary(),
        "unplaced": result.unplaced,
        "week_load": result.week_load,
        "changes": result.changes,
    }


def plan_rotations(
    start: date | None = None, weeks: int = 52, dry_run: bool = False, *, solve: Callable[..., dict] = solve_plan
) -> dict:
    out = solve(start, weeks, dry_run)
    s = out["summary"]
    gap = "n/a" if s.get("gap") is None else f"{100 * s['gap']:.3f}%"
    report(
        "rotation-plan",
        f"Rotation plan from {s['horizon_start']}: {s['planned']} planned, {s['unplaced_count']} unplaced, gap {gap}",
        table=[{"figure": k, "value": s.get(k)} for k in PLAN_FIGURES],
    )
    report(
        "rotation-plan-changes",
        "What this run changed (or would change): who, from, to, why",
        table=[
            {k: c.get(k) for k in ("employee_id", "name", "action", "old_start", "new_start", "why")}
            for c in out["changes"]
        ]
        or [
            {
                "employee_id": "-",
                "name": "-",
                "action": "nothing changed",
                "old_start": "-",
                "new_start": "-",
                "why": "-",
            }
        ],
    )
    report(
        "rotation-plan-week-load",
        "People starting and on rotation per week (including locked rotations) against the seats",
        table=out["week_load"] or [{"week": "-", "starts": 0, "on_rotation": 0, "seats": 0}],
    )
    return out


# --- pair-mentors and send-surveys ------------------------------------------------------------------


def pair_horizon(as_of: date, dry_run: bool) -> dict:
    from frontline.core.policy import load_policy
    from frontline.mentors.service import pair_mentors as pair
    from models import session_scope

    policy = load_policy()
    with session_scope() as session:
        result = pair(session, policy, as_of=as_of, actor="flow:pair-mentors", dry_run=dry_run)
        if dry_run:
            session.rollback()
    return {
        "summary": result.summary(),
        "unmatched": result.unmatched,
        "replaced": result.replaced,
        "created": result.created,
    }


def pair_mentors(as_of: date | None = None, dry_run: bool = False, *, pair: Callable[..., dict] = pair_horizon) -> dict:
    from frontline.core import clock

    as_of = as_of or clock.today()
    out = pair(as_of, dry_run)
    table = [{"what": k, "value": "" if v is None else str(v)} for k, v in out["summary"].items()]
    table += [
        {
            "what": f"unmatched: {u['rotator']} ({u['start']})",
            "value": u["reason"] + (f"; {u['relaxation']}" if u["relaxation"] else ""),
        }
        for u in out["unmatched"]
    ]
    table += [
        {"what": f"replaced: {r['old_mentor']} for {r['rotator']}", "value": r["reason"]} for r in out["replaced"]
    ]
    report("pair-mentors", f"Mentor pairing as of {as_of}", table=table)
    return out


def survey_batch(as_of: date) -> dict:
    from frontline.mentors.surveys import queue_surveys
    from models import session_scope

    with session_scope() as session:
        return queue_surveys(session, as_of, actor="flow:send-surveys")


def send_surveys(as_of: date | None = None, *, batch: Callable[..., dict] = survey_batch) -> dict:
    from frontline.core import clock

    as_of = as_of or clock.today()
    counts = batch(as_of)
    report("send-surveys", f"Wrap-up surveys as of {as_of}", table=counts_table(counts))
    return counts


# --- import-roster ----------------------------------------------------------------------------------

ROSTER_ARTIFACT = "roster-import"


def apply_roster(
    departments: str, employees: str, absences: str | None, actor: str, allow_leavers: int | None = None
) -> ImportResult | RosterError:
    """The whole import in one transaction. A refused roster is returned (not raised): it is an answer,
    not a crash, and retrying cannot change it."""
    from frontline.core.errors import RosterError
    from frontline.people.roster import import_roster
    from models import session_scope

    try:
        with session_scope() as session:
            return import_roster(session, departments, employees, absences, actor=actor, allow_leavers=allow_leavers)
    except RosterError as exc:
        return exc


def import_roster(
    departments: str,
    employees: str,
    absences: str | None = None,
    actor: str = "flow:import-roster",
    allow_leavers: int | None = None,
    *,
    apply: Callable[..., Any] = apply_roster,
) -> ImportResult:
    """The import; a refused roster leaves the markdown artifact listing every problem and raises
    :class:`~frontline.core.errors.RosterError` (nothing written)."""
    from frontline.core.errors import RosterError
    from frontline.people.events import emit_new_hires

    result = apply(departments, employees, absences, actor, allow_leavers)
    if isinstance(result, RosterError):
        lines = "\n".join(f"- `{p}`" for p in result.problems)
        report(
            ROSTER_ARTIFACT,
            "Roster import refused",
            markdown=f"# Roster import refused\n\n{len(result.problems)} problem(s); nothing was written.\n\n{lines}\n",
        )
        raise result
    report(ROSTER_ARTIFACT, f"Roster import: {result.summary()}", table=counts_table(result.counts()))
    emit_new_hires(result.new_hire_ids, source="roster-import")  # triggers the onboard-new-hire deployment
    return result


# --- deliver-mail -----------------------------------------------------------------------------------


def deliver_mail_batch(batch_size: int) -> dict:
    from frontline.mail.delivery import deliver_batch
    from frontline.mail.transport import transport_from_settings
    from models import get_engine

    transport = transport_from_settings()
    try:
        result = deliver_batch(get_engine(), transport, batch_size=batch_size)
    finally:
        transport.close()
    for error in result.errors[:20]:
        run_logger().warning("not delivered yet: %s", error)
    return result.as_dict()


def deliver_mail(
    batch_size: int = 200,
    max_batches: int | None = None,
    retry_delay_seconds: float = 5.0,
    *,
    batch: Callable[[int], dict] = deliver_mail_batch,
) -> dict:
    totals = {"batches": 0, "claimed": 0, "sent": 0, "retry": 0, "failed": 0, "taken_over": 0, "throttled": 0}
    while max_batches is None or totals["batches"] < max_batches:
        counts = batch(batch_size)
        totals["batches"] += 1
        for key in ("claimed", "sent", "retry", "failed", "taken_over", "throttled"):
            totals[key] += counts.get(key, 0)
        if counts["claimed"] < batch_size:
            break
    report(
        "mail-delivery",
        f"Outbox delivery: {totals['claimed']} message(s) in {totals['batches']} batch(es)",
        table=counts_table({k: totals[k] for k in ("sent", "retry", "failed")}, "outcome", "messages"),
        audit=Audit("flow:deliver-mail", "mail.deliver", totals),
    )
    return totals


# --- send-digests -----------------------------------------------------------------------------------

DIGEST_BATCH = 50


def assign_themes(week: str) -> dict:
    from frontline.digests.loading import compute_themes
    from models import session_scope

    with session_scope() as session:
        return compute_themes(session, week, persist=True)


def queue_digest_batch(week: str, department_ids: list[int], themes: dict) -> list[dict]:
    from frontline.digests.queue import queue_digests
    from models import session_scope

    with session_scope() as session:
        return [o.row() for o in queue_digests(session, week, department_ids=department_ids, themes=themes)]


def send_digests(
    week: str | None = None,
    department: str | None = None,
    *,
    themes_step: Callable[[str], dict] = assign_themes,
    batch: Callable[..., list[dict]] = queue_digest_batch,
) -> list[dict]:
    from frontline.digests.loading import all_department_ids, department_ids_named
    from frontline.digests.weeks import last_completed_week, parse_week
    from models import session_scope

    week = week or last_completed_week()
    parse_week(week)
    with session_scope() as session:
        ids = department_ids_named(session, department) or all_department_ids(session)
    themes = themes_step(week)
    rows: list[dict] = []
    for i in range(0, len(ids), DIGEST_BATCH):
        rows.extend(batch(week, ids[i : i + DIGEST_BATCH], themes))
    queued = sum(int(r["status"].split()[1]) for r in rows if r["status"].startswith("queued"))
    report(
        "digests",
        f"Weekly digests for {week}: {queued} message(s) queued, {len(rows)} department(s)",
        table=rows or [{"department": "-", "observations": 0, "themes": 0, "status": "no departments"}],
        audit=Audit(
            "flow:send-digests",
            "digests.send",
            {"departments": len(rows), "queued": queued},
            subject_type="week",
            subject_id=week,
        ),
    )
    return rows


# --- send-invites and send-reminders ----------------------------------------------------------------
# With ``dry_run`` every batch makes the same decisions and rolls its transaction back: the result lists
# the messages that would be queued (``messages``: kind, to, subject) and nothing is written or audited.

INVITE_BATCH = 50
MAX_LISTED = 1000  # messages listed in a result (the counts cover all)


def _today() -> date:
    from frontline.core import clock

    return clock.today()


def _chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def invite_batch(
    rotation_ids: list[int],
    as_of: date,
    announce_weeks: int,
    checkin_minutes: int,
    working_hours: tuple[int, int] = (9, 17),
    dry_run: bool = False,
) -> dict:
    from frontline.calendar.invites import process_invites
    from frontline.mail.outbox import recording
    from models import session_scope

    with session_scope() as session, recording() as queued:
        counts = process_invites(
            session,
            rotation_ids,
            as_of=as_of,
            announce_weeks=announce_weeks,
            checkin_minutes=checkin_minutes,
            working_hours=working_hours,
        )
        if dry_run:
            session.rollback()
    return {**counts.as_dict(), "messages": queued}


def _finish(result: dict, messages: list[dict], dry_run: bool) -> dict:
    """The job's result: the counts, whether it was a dry run, and the messages queued (or that would be)."""
    return {**result, "dry_run": dry_run, "messages": messages[:MAX_LISTED]}


def send_invites(
    as_of: date | None = None,
    announce_weeks: int = 8,
    dry_run: bool = False,
    *,
    batch: Callable[..., dict] = invite_batch,
) -> dict:
    from frontline.calendar.invites import Counts, rotations_to_announce
    from frontline.core.policy import load_policy
    from models import session_scope

    as_of = as_of or _today()
    mentoring = load_policy().mentoring
    minutes, hours = mentoring.checkin_minutes, mentoring.working_hours
    with session_scope() as session:
        ids = rotations_to_announce(session, as_of, announce_weeks)
    totals = Counts()
    messages: list[dict] = []
    for chunk in _chunks(ids, INVITE_BATCH):
        counts = batch(chunk, as_of, announce_weeks, minutes, hours, dry_run)
        messages.extend(counts.pop("messages"))
        totals.add(Counts(**counts))
    result = {"rotations_checked": len(ids), **totals.as_dict()}
    report(
        "send-invites",
        f"Calendar invites as of {as_of} (window {announce_weeks} weeks){' - dry run, nothing queued' if dry_run else ''}",
        table=counts_table(result),
        audit=None if dry_run else Audit("flow:send-invites", "invites.send", {"as_of": as_of.isoformat(), **result}),
    )
    return _finish(result, messages, dry_run)


def reminder_batch(
    rotation_ids: list[int],
    as_of: date,
    days_before: list[int],
    weekly_nudge: bool,
    checkin_minutes: int,
    working_hours: tuple[int, int] = (9, 17),
    dry_run: bool = False,
) -> dict:
    from frontline.calendar.invites import process_reminders
    from frontline.core.policy import load_policy
    from frontline.mail.outbox import recording
    from models import session_scope

    chat = load_policy().chat
    with session_scope() as session, recording() as queued:
        counts = process_reminders(
            session,
            rotation_ids,
            chat=chat,
            as_of=as_of,
            days_before=days_before,
            weekly_nudge=weekly_nudge,
            checkin_minutes=checkin_minutes,
            working_hours=working_hours,
        )
        if dry_run:
            session.rollback()
    return {**counts, "messages": queued}


def send_reminders(
    as_of: date | None = None, dry_run: bool = False, *, batch: Callable[..., dict] = reminder_batch
) -> dict:
    from frontline.calendar.invites import rotations_for_reminders
    from frontline.core.policy import load_policy
    from models import session_scope

    as_of = as_of or _today()
    policy = load_policy()
    days = list(policy.reminders.days_before)
    with session_scope() as session:
        ids = rotations_for_reminders(session, as_of, days)
    totals = {"reminders": 0, "welcomes": 0, "nudges": 0, "queued": 0, "chats": 0}
    messages: list[dict] = []
    for chunk in _chunks(ids, INVITE_BATCH):
        counts = batch(
            chunk,
            as_of,
            days,
            policy.reminders.weekly_nudge,
            policy.mentoring.checkin_minutes,
            policy.mentoring.working_hours,
            dry_run,
        )
        messages.extend(counts.pop("messages"))
        for key in totals:
            totals[key] += counts.get(key, 0)
    if not policy.chat.people:
        del totals["chats"]  # no chat channel for people: nothing to report
    result = {"rotations_checked": len(ids), **totals}
    report(
        "send-reminders",
        f"Reminders, welcomes and nudges as of {as_of}{' - dry run, nothing queued' if dry_run else ''}",
        table=counts_table(result),
        audit=None
        if dry_run
        else Audit("flow:send-reminders", "reminders.send", {"as_of": as_of.isoformat(), **result}),
    )
    return _finish(result, messages, dry_run)


# --- escalate-overdue -------------------------------------------------------------------------------

ESCALATION_EMPTY_ROW = {"observation": "-", "department": "-", "created_at": "-", "product_area": "-"}


def escalate_batch(as_of_iso: str | None, dry_run: bool = False) -> dict:
    """Escalate, then leave the ``escalations`` artifact and the audit event in the same transaction
    (a dry run escalates, lists the mail it queued and rolls everything back)."""
    from frontline.mail.outbox import recording
    from frontline.observations.escalation import escalate_overdue_observations, escalation_summary
    from models import session_scope, utcnow

    as_of = datetime.fromisoformat(as_of_iso) if as_of_iso else utcnow()
    with session_scope() as session, recording() as queued:
        ids = escalate_overdue_observations(session, as_of)
        rows = escalation_summary(session, ids)
        if dry_run:
            session.rollback()
        report(
            "escalations",
            f"Second escalation of {len(rows)} unacknowledged urgent observation(s)"
            + (" - dry run, nothing queued" if dry_run else ""),
            table=rows or [ESCALATION_EMPTY_ROW],
            audit=None
            if dry_run
            else Audit(
                "flow:escalate-overdue",
                "observations.escalate_overdue",
                {"as_of": as_of.isoformat(), "escalated": len(ids)},
            ),
            session=session,
        )
    return {"rows": rows, "messages": queued}


def escalate_overdue(
    as_of: datetime | None = None, dry_run: bool = False, *, batch: Callable[..., dict] = escalate_batch
) -> dict:
    """Escalate overdue urgent observations once more. Returns ``escalated`` (the observation ids escalated in
    this run, or that would be), ``dry_run`` and ``messages`` (kind, to, subject of the mail queued)."""
    if as_of is not None and as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    out = batch(as_of.isoformat() if as_of else None, dry_run)
    return {"escalated": [r["observation"] for r in out["rows"]], "dry_run": dry_run, "messages": out["messages"]}


# --- sync-time-off ----------------------------------------------------------------------------------

TIME_OFF_ARTIFACT = "time-off-sync"


def fetch_time_off_feed(feed: TimeOffFeed, settings: TimeOff) -> bytes:
    from frontline.people.time_off import fetch_feed

    return fetch_feed(feed, settings)


def apply_time_off_feed(feed: TimeOffFeed, data: bytes, settings: TimeOff, today: date) -> TimeOffResult:
    from frontline.core.clock import org_tz, utcnow
    from frontline.operations.connectors import record_success
    from frontline.people.time_off import apply_feed, read_calendar, source_of
    from models import session_scope

    calendar = read_calendar(data, feed.name)
    with session_scope() as session:
        result = apply_feed(session, feed, calendar, today, settings, org_tz())
        record_success(session, source_of(feed), result.summary(), utcnow())
        return result


def _record_time_off_failure(feed: TimeOffFeed, message: str) -> None:
    from frontline.core.clock import utcnow
    from frontline.operations.connectors import record_failure
    from frontline.people.time_off import source_of
    from models import session_scope

    with session_scope() as session:
        record_failure(session, source_of(feed), message, utcnow())


def sync_time_off(
    as_of: date | None = None,
    replan: bool = True,
    *,
    fetch: Callable[..., bytes] = fetch_time_off_feed,
    apply: Callable[..., TimeOffResult] = apply_time_off_feed,
    replan_with: Callable[..., dict] = plan_rotations,
) -> dict[str, Any]:
    """Read every calendar feed of the policy's ``[time_off]``; re-plan (``replan_with``) when new time off
    overlaps a live rotation. A feed that fails is recorded for ``frontline status`` and the others go on;
    then :class:`JobFailed` carries what was done."""
    from frontline.core.clock import today
    from frontline.core.policy import load_policy
    from frontline.people.time_off import FeedError

    policy = load_policy()
    day = as_of or today()
    results: list[TimeOffResult] = []
    errors: list[str] = []
    for feed in policy.time_off.feeds:
        try:
            data = fetch(feed, policy.time_off)
            results.append(apply(feed, data, policy.time_off, day))
        except FeedError as exc:
            errors.append(str(exc))
            _record_time_off_failure(feed, str(exc))
    affected = sorted({r for res in results for r in res.affected_rotations})
    replanned = replan_with(start=day) if affected and replan else None
    rows = [
        {
            "feed": r.feed,
            "events": r.events,
            "people": r.people,
            "absences": r.absences,
            "added": r.added,
            "removed": r.removed,
            "unmatched": len(r.unmatched),
            "rotations_overlapping": len(r.affected_rotations),
        }
        for r in results
    ] + [{"feed": e, "events": "failed"} for e in errors]
    summary = {
        "feeds": len(policy.time_off.feeds),
        "failed": len(errors),
        "absences_added": sum(r.added for r in results),
        "absences_removed": sum(r.removed for r in results),
        "rotations_overlapping": len(affected),
        "replanned": replanned is not None,
    }
    report(
        TIME_OFF_ARTIFACT,
        f"Time off from {len(policy.time_off.feeds)} calendar feed(s): {summary['absences_added']} added, "
        f"{summary['absences_removed']} removed, {len(errors)} failed",
        table=rows or [{"feed": "(no feeds in the policy's [time_off])"}],
        audit=Audit(actor="flow:sync-time-off", action="time_off.sync", details=summary),
    )
    out = {"summary": summary, "feeds": [r.summary() for r in results], "errors": errors}
    if errors:
        raise JobFailed("; ".join(errors), out)
    return out


# --- read-rsvp-replies ------------------------------------------------------------------------------

RSVP_ARTIFACT = "rsvp-replies"
RSVP_CONNECTOR = "rsvp-replies"


def read_mailbox(as_of: date | None) -> dict[str, Any]:
    """One pass over the organiser mailbox (:func:`frontline.calendar.replies.process_mailbox`). Raises
    :class:`frontline.mail.imap.MailboxError` when the mailbox cannot be used (nothing is written)."""
    from frontline.calendar.ics import organizer_from_settings
    from frontline.calendar.replies import process_mailbox
    from frontline.core.clock import today
    from frontline.core.policy import load_policy
    from frontline.mail.imap import MailboxError, mailbox_from_settings

    try:
        mailbox = mailbox_from_settings()
    except ValueError as exc:  # a URL that cannot be used: never retried
        raise MailboxError(str(exc), transient=False) from None
    if mailbox is None:  # the connector is not in use: nothing to read is not a failure
        return {
            "configured": False,
            "counts": {},
            "lines": [],
            "skips": [],
            "summary": "FRONTLINE_IMAP_URL is not set: no organiser mailbox to read (README: RSVP replies)",
        }
    run = process_mailbox(mailbox, load_policy(), sender=organizer_from_settings().email, today=as_of or today())
    return {
        "configured": True,
        "counts": run.counts(),
        "lines": run.lines,
        "skips": run.skips,
        "summary": run.summary(),
    }


def read_rsvp_replies(as_of: date | None = None, *, read: Callable[..., dict] = read_mailbox) -> dict[str, Any]:
    """Read the RSVP replies in the organiser mailbox: accepts and tentatives are recorded, a decline opens
    a change request for HR. The mailbox's last success or error is recorded for ``frontline status``; a
    mailbox that cannot be used (server down, wrong password) writes nothing else and fails the run."""
    from frontline.core.clock import utcnow
    from frontline.mail.imap import MailboxError
    from frontline.operations.connectors import record_failure, record_success
    from models import session_scope

    log = run_logger()
    try:
        out = read(as_of)
    except MailboxError as exc:
        with session_scope() as session:
            record_failure(session, RSVP_CONNECTOR, str(exc), utcnow())
        raise JobFailed(
            str(exc), {"configured": True, "counts": {}, "lines": [], "skips": [], "summary": "failed"}
        ) from None
    if not out["configured"]:
        log.info("%s", out["summary"])
        return out
    for line in out["skips"]:
        log.warning("RSVP reply skipped: %s", line)
    with session_scope() as session:
        record_success(session, RSVP_CONNECTOR, out["summary"], utcnow())
        report(
            RSVP_ARTIFACT,
            f"RSVP replies: {out['summary']}",
            table=counts_table(out["counts"]) + [{"what": "skipped: " + line, "count": 1} for line in out["skips"]],
            audit=Audit("flow:read-rsvp-replies", "rsvp.read", out["counts"]),
            session=session,
        )
    return out


# --- deliver-chat -----------------------------------------------------------------------------------


def send_chat() -> dict:
    from frontline.chat.service import deliver_due
    from frontline.core.clock import utcnow
    from frontline.core.policy import load_policy
    from models import session_scope

    chat = load_policy().chat
    with session_scope() as session:
        done = deliver_due(session, chat, utcnow())
    return {"sent": done.sent, "failed": done.failed, "dropped": done.dropped, "errors": done.errors}


def deliver_chat(*, send: Callable[[], dict] = send_chat) -> dict:
    """Send the chat notifications that are due (a failed send is retried by a later run, with backoff)."""
    out = send()
    counts = {k: out[k] for k in ("sent", "failed", "dropped")}
    report(
        "deliver-chat",
        f"Chat: {out['sent']} sent, {out['failed']} failed",
        table=counts_table(counts),
        audit=Audit("flow:deliver-chat", "chat.deliver", counts),
    )
    return out
