"""Flow ``onboard-new-hire``: place, pair, invite and deliver for EVERY pending new hire, minutes after a hire.

Triggered by the ``frontline.employee.hired`` event (see :mod:`frontline.people.events` and the trigger of the
``onboard-new-hire`` deployment in ``prefect.yaml``), so a new hire does not wait for the nightly runs.

**Coalescing.** The event only says *that* there is work; the work list is read from the database
(:func:`frontline.rotations.onboarding.pending_new_hires`), so one run onboards every pending hire, however
many events announced them. The run repeats until a check finds nobody new (a hire committed while a round
was running is taken by the next round), and the runs of this deployment that were queued before that check
are cancelled as *coalesced* (their hires were committed before their events, hence before the check that
found them); they never start a process. The deployment's limit of 1 (ENQUEUE) lets a run queued after the
last check run next, so a backlog never delays the newest hire by more than one run.

Each round, every step one task worth retrying on its own and idempotent (keyed by employee):

1. the full planner (:func:`frontline.rotations.onboarding.plan_new_hires`): new hires get the placement the
   nightly plan would give them (inside the policy's new-hire window, moving drafts when the optimum does);
2. mentor pairing (:func:`frontline.mentors.service.pair_mentors`): pairs the rotations without a mentor,
   keeps every valid pairing;
3. calendar invites for the new hires' rotations starting inside the announce window
   (:func:`frontline.calendar.invites.process_invites`);
4. mail delivery: the ``deliver-mail`` flow as a subflow (its compare-and-set claims keep it safe next
   to a scheduled delivery run).

Leaves a markdown artifact (``onboarding``), an AuditEvent ``onboarding.hire`` per hire and one
``onboarding.run`` per run.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.common import PLANNING_TAG, Audit, crash_when_stopped, report
from frontline.people.events import employee_id_from_resource

ACTOR = "flow:onboard-new-hire"
MAX_ROUNDS = 10


def _today() -> date:
    from frontline.core import clock

    return clock.today()


def _run_name() -> str:
    from prefect.runtime import flow_run

    employee_id = flow_run.parameters.get("employee_id")
    return f"onboard-{employee_id_from_resource(str(employee_id)) if employee_id else 'pending'}"


@task(name="onboard-pending", retries=1, retry_delay_seconds=[5], cache_policy=NO_CACHE)
def pending_task(as_of: date, announce_weeks: int) -> list[str]:
    from frontline.core.policy import load_policy
    from frontline.rotations.onboarding import pending_new_hires
    from models import session_scope

    with session_scope() as session:
        return pending_new_hires(session, load_policy(), today=as_of, announce_weeks=announce_weeks)


@task(name="onboard-plan", retries=1, retry_delay_seconds=[10], cache_policy=NO_CACHE, tags=[PLANNING_TAG])
def plan_task(employee_ids: list[str], as_of: date) -> dict:
    from frontline.core.policy import load_policy
    from frontline.rotations.onboarding import plan_new_hires
    from models import session_scope

    with session_scope() as session:
        return plan_new_hires(session, load_policy(), employee_ids, today=as_of, actor=ACTOR)


@task(name="onboard-pair", retries=1, retry_delay_seconds=[10], cache_policy=NO_CACHE, tags=[PLANNING_TAG])
def pair_task(as_of: date, rotation_ids: list[int]) -> dict:
    from frontline.core.policy import load_policy
    from frontline.mentors.service import pair_mentors
    from frontline.rotations.onboarding import mentors_of
    from models import session_scope

    with session_scope() as session:
        result = pair_mentors(session, load_policy(), as_of=as_of, actor=ACTOR)
    with session_scope() as session:
        mentors = mentors_of(session, rotation_ids)
    unmatched = {u.get("rotation_id"): u.get("reason") for u in result.unmatched}
    return {
        "created": len(result.created),
        "mentors": {str(r): mentors.get(r) for r in rotation_ids},
        "unmatched": {str(r): unmatched[r] for r in rotation_ids if r in unmatched and r not in mentors},
    }


@task(name="onboard-invite", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def invite_task(rotation_ids: list[int], as_of: date, announce_weeks: int) -> dict:
    from frontline.calendar.invites import process_invites
    from frontline.core.policy import load_policy
    from frontline.rotations.onboarding import announced
    from models import session_scope

    mentoring = load_policy().mentoring
    with session_scope() as session:
        counts = process_invites(
            session,
            rotation_ids,
            as_of=as_of,
            announce_weeks=announce_weeks,
            checkin_minutes=mentoring.checkin_minutes,
            working_hours=mentoring.working_hours,
        )
    with session_scope() as session:
        invited = announced(session, rotation_ids)
    return counts.as_dict() | {"invited": sorted(invited)}


@task(name="onboard-unrecorded", retries=1, retry_delay_seconds=[5], cache_policy=NO_CACHE)
def unrecorded_task(as_of: date, announce_weeks: int) -> dict[str, dict[str, Any]]:
    from frontline.core.policy import load_policy
    from frontline.rotations.onboarding import unrecorded_onboarded
    from models import session_scope

    with session_scope() as session:
        return unrecorded_onboarded(session, load_policy(), today=as_of, announce_weeks=announce_weeks)


@task(name="onboard-record", retries=1, retry_delay_seconds=[5], cache_policy=NO_CACHE)
def record_task(hires: dict[str, dict[str, Any]]) -> None:
    from frontline.rotations.onboarding import record_onboarded
    from models import session_scope

    with session_scope() as session:
        record_onboarded(session, hires, ACTOR)


# --- coalescing: the other runs of this deployment that wait to start -------------------------------


def queued_runs() -> list[Any]:
    """Ids of the other runs of this run's deployment that have not started: Scheduled, Late, waiting for
    the concurrency slot, or Pending. With the deployment's limit of 1 a Pending run next to this running one
    is an orphan: a worker claimed it and stopped before starting it (its slot lease has lapsed, or this run
    would not hold the slot). Empty outside a deployment run (a direct call, the demo)."""
    from prefect.runtime import deployment, flow_run

    deployment_id, own_id = deployment.id, flow_run.id
    if not deployment_id:
        return []
    runs: list[Any] = []
    try:
        _read_queued(deployment_id, runs)
    except Exception as exc:  # noqa: BLE001 - without the list nothing is cancelled: those runs run and find nothing
        get_run_logger().warning("could not list the queued onboarding runs: %s", exc)
    return [r.id for r in runs if str(r.id) != str(own_id)]


def _read_queued(deployment_id: Any, runs: list[Any]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        while True:  # pages of 200, the API's largest
            page = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING]))
                ),
                limit=200,
                offset=len(runs),
            )
            runs += page
            if len(page) < 200:
                break


def cancel_coalesced(run_ids: list[Any]) -> int:
    """Cancel the queued runs whose hires this run has onboarded (see the module docstring); a run that has
    meanwhile left its scheduled state is left alone. Returns how many were cancelled."""
    if not run_ids:
        return 0
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run
    from prefect.states import Cancelled

    cancelled = 0
    message = f"coalesced: onboarding run {flow_run.name} onboarded every hire pending when this run was queued"
    with get_client(sync_client=True) as client:
        for run_id in run_ids:
            try:
                result: Any = client.set_flow_run_state(run_id, Cancelled(message=message))
            except Exception as exc:  # noqa: BLE001 - a run that cannot be cancelled simply runs (and finds nothing)
                get_run_logger().warning("could not cancel queued run %s: %s", run_id, exc)
                continue
            cancelled += result.status.value == "ACCEPT"
    return cancelled


# --- the flow --------------------------------------------------------------------------------------


@flow(name="onboard-new-hire", flow_run_name=_run_name)
@crash_when_stopped
def onboard_new_hire(
    employee_id: str | None = None, announce_weeks: int = 8, deliver: bool = True, as_of: date | None = None
) -> dict:
    """Onboard every pending new hire now: plan (full planner), pair with a mentor, queue invites, deliver.

    ``employee_id`` (the external id or the event resource ``frontline.employee.<id>``) names the hire whose
    event started the run; it only names the run: the run onboards whoever is pending."""
    logger = get_run_logger()
    as_of = as_of or _today()
    hires: dict[str, dict[str, Any]] = {}
    outcome: dict[str, Any] = {"employee_id": employee_id_from_resource(employee_id) if employee_id else None}
    rounds: list[dict[str, Any]] = []
    coalesced = 0
    for _round in range(MAX_ROUNDS):
        queued = queued_runs()  # listed BEFORE the check: their hires are committed, so the check sees them
        pending = [e for e in pending_task(as_of, announce_weeks) if e not in hires]
        if not pending:
            coalesced += cancel_coalesced(queued)
            break
        done = _onboard_round(pending, as_of, announce_weeks, deliver)
        hires.update(done["hires"])
        rounds.append({"hires": len(pending)} | {k: v for k, v in done.items() if k != "hires"})
        coalesced += cancel_coalesced(queued)
        logger.info("round %d: %d hire(s) onboarded", len(rounds), len(pending))
    record_task(hires)
    late = unrecorded_task(as_of, announce_weeks)  # hires an interrupted run onboarded but did not record
    if late:
        record_task(late)
        if deliver:  # that run may have stopped before delivering their invites: deliver them now
            from flows.mail import deliver_mail

            deliver_mail()
    outcome |= {"hires": hires, "rounds": rounds, "coalesced_runs": coalesced, "recorded_late": sorted(late)}
    placed = [h for h in hires.values() if h["status"] == "planned"]
    details = {
        "hires": len(hires),
        "placed": len(placed),
        "paired": sum(1 for h in placed if h.get("mentor")),
        "invited": sum(1 for h in placed if h.get("invited")),
        "rounds": len(rounds),
        "coalesced_runs": coalesced,
    }
    report(
        "onboarding",
        f"Onboarding: {len(hires)} hire(s) in {len(rounds)} round(s)",
        markdown=_summary(outcome),
        audit=Audit(ACTOR, "onboarding.run", details),
    )
    return outcome


def _onboard_round(pending: list[str], as_of: date, announce_weeks: int, deliver: bool) -> dict[str, Any]:
    """One round for ``pending``: plan, pair, invite, deliver; returns each hire's outcome and the figures."""
    planned = plan_task(pending, as_of)
    hires: dict[str, dict[str, Any]] = planned["hires"]
    rotation_ids = [h["rotation_id"] for h in hires.values() if h["rotation_id"] is not None]
    done: dict[str, Any] = {"plan": {k: planned["plan"].get(k) for k in ("created", "moved", "gap")}}
    if rotation_ids:
        pairing = pair_task(as_of, rotation_ids)
        invites = invite_task(rotation_ids, as_of, announce_weeks)
        for hire in hires.values():
            rotation = hire["rotation_id"]
            if rotation is not None:
                hire["mentor"] = pairing["mentors"].get(str(rotation))
                hire["unmatched_reason"] = pairing["unmatched"].get(str(rotation))
                hire["invited"] = rotation in invites["invited"]
        done["invites_queued"] = invites.get("queued", 0)
        if deliver:
            from flows.mail import deliver_mail

            done["mail_sent"] = deliver_mail().get("sent", 0)
    return done | {"hires": hires}


def _summary(outcome: dict) -> str:
    """The run as markdown: per hire the placement, the mentor and the invite; then the rounds."""
    lines = [f"# Onboarding ({len(outcome['hires'])} hire(s))", ""]
    lines.append("| hire | plan | start | weeks after hire | mentor | invited | note |")
    lines.append("|---|---|---|---|---|---|---|")
    for employee_id, h in sorted(outcome["hires"].items()):
        note = h.get("unmatched_reason") or h.get("reason") or ""
        lines.append(
            f"| {employee_id} | {h['status']} | {h['start'] or ''} | {h['weeks_after_hire'] if h['weeks_after_hire'] is not None else ''} "
            f"| {h.get('mentor') or ''} | {'yes' if h.get('invited') else 'no'} | {note} |"
        )
    lines += ["", f"Rounds: {outcome['rounds']}", f"Queued runs coalesced into this one: {outcome['coalesced_runs']}"]
    return "\n".join(lines) + "\n"
