"""Flow ``onboard-new-hire``: plan, pair, invite and deliver for ONE new hire, minutes after the hire.

Triggered by the ``frontline.employee.hired`` event (see :mod:`frontline.people.events` and the trigger of the
``onboard-new-hire`` deployment in ``prefect.yaml``), so a new hire does not wait for the nightly runs.

Steps, each one task worth retrying on its own and each idempotent (a re-run changes nothing):

1. an add-only planner run for that person (:func:`frontline.rotations.onboarding.plan_new_hire`): nobody else moves;
2. mentor pairing (:func:`frontline.mentors.service.pair_mentors`): pairs the rotations without a mentor,
   keeps every valid pairing;
3. calendar invites for that person's rotation (:func:`frontline.calendar.invites.process_invites`);
4. mail delivery: the ``deliver-mail`` flow as a subflow (its compare-and-set claim keeps it safe next
   to a scheduled delivery run).

Leaves a markdown artifact (``onboarding``) and an AuditEvent ``onboarding.run``.
"""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.common import PLANNING_TAG, Audit, report
from frontline.people.events import employee_id_from_resource

ACTOR = "flow:onboard-new-hire"


def _today() -> date:
    from frontline.core import clock

    return clock.today()


def _run_name() -> str:
    from prefect.runtime import flow_run

    return f"onboard-{employee_id_from_resource(str(flow_run.parameters.get('employee_id', '?')))}"


@task(name="onboard-plan", retries=1, retry_delay_seconds=[10], cache_policy=NO_CACHE, tags=[PLANNING_TAG])
def plan_task(employee_id: str, as_of: date) -> dict:
    from frontline.core.policy import load_policy
    from frontline.rotations.onboarding import plan_new_hire
    from models import session_scope

    with session_scope() as session:
        return plan_new_hire(session, load_policy(), employee_id, today=as_of, actor=ACTOR)


@task(name="onboard-pair", retries=1, retry_delay_seconds=[10], cache_policy=NO_CACHE, tags=[PLANNING_TAG])
def pair_task(as_of: date, rotation_id: int) -> dict:
    from sqlmodel import col, select

    from frontline.core.policy import load_policy
    from frontline.mentors.service import pair_mentors
    from models import Employee, MentorPairing, session_scope

    with session_scope() as session:
        result = pair_mentors(session, load_policy(), as_of=as_of, actor=ACTOR)
    with session_scope() as session:
        row = session.exec(
            select(MentorPairing, Employee)
            .join(Employee, col(Employee.id) == col(MentorPairing.mentor_id))
            .where(MentorPairing.rotation_id == rotation_id, MentorPairing.status == "active")
        ).first()
    unmatched = [u for u in result.unmatched if u.get("rotation_id") == rotation_id]
    return {
        "created": len(result.created),
        "mentor": row[1].employee_id if row else None,
        "unmatched_reason": unmatched[0].get("reason") if unmatched else None,
    }


@task(name="onboard-invite", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def invite_task(rotation_id: int, as_of: date, announce_weeks: int) -> dict:
    from frontline.calendar.invites import process_invites
    from frontline.core.policy import load_policy
    from models import session_scope

    mentoring = load_policy().mentoring
    with session_scope() as session:
        counts = process_invites(
            session,
            [rotation_id],
            as_of=as_of,
            announce_weeks=announce_weeks,
            checkin_minutes=mentoring.checkin_minutes,
            working_hours=mentoring.working_hours,
        )
    return counts.as_dict()


@flow(name="onboard-new-hire", flow_run_name=_run_name)
def onboard_new_hire(
    employee_id: str, announce_weeks: int = 8, deliver: bool = True, as_of: date | None = None
) -> dict:
    """Onboard one new hire now: plan (add-only), pair with a mentor, queue invites, deliver mail.

    ``employee_id`` is the external id, or the event resource id ``frontline.employee.<id>``."""
    logger = get_run_logger()
    employee_id = employee_id_from_resource(employee_id)
    as_of = as_of or _today()
    outcome: dict = {"employee_id": employee_id, "plan": plan_task(employee_id, as_of)}
    rotation_id = outcome["plan"]["rotation_id"]
    if rotation_id is None:
        logger.warning("%s: no rotation (%s): %s", employee_id, outcome["plan"]["status"], outcome["plan"]["reason"])
    else:
        outcome["pairing"] = pair_task(as_of, rotation_id)
        outcome["invites"] = invite_task(rotation_id, as_of, announce_weeks)
        if deliver:
            from flows.mail import deliver_mail

            outcome["mail"] = deliver_mail()
    plan = outcome["plan"]
    details = {
        "plan": plan["status"],
        "rotation_id": rotation_id,
        "start": plan["start"],
        "mentor": outcome.get("pairing", {}).get("mentor"),
        "invites": outcome.get("invites", {}).get("queued", 0),
    }
    report(
        "onboarding",
        f"Onboarding of {employee_id}",
        markdown=_summary(employee_id, outcome),
        audit=Audit(ACTOR, "onboarding.run", details, subject_type="employee", subject_id=employee_id),
    )
    return outcome


def _summary(employee_id: str, outcome: dict) -> str:
    """The run as markdown: the plan, the mentor and invites (when planned), the mail delivered."""
    plan = outcome["plan"]
    lines = [f"# Onboarding {employee_id}", "", f"- plan: **{plan['status']}** {plan['start'] or ''} {plan['reason']}"]
    if "pairing" in outcome:
        p = outcome["pairing"]
        lines.append(
            f"- mentor: {p['mentor'] or 'none yet'}" + (f" ({p['unmatched_reason']})" if p["unmatched_reason"] else "")
        )
        lines.append(f"- invites queued: {outcome['invites'].get('queued', 0)}")
    if "mail" in outcome:
        lines.append(
            f"- mail delivered: {outcome['mail'].get('sent', 0)} sent, {outcome['mail'].get('failed', 0)} failed"
        )
    return "\n".join(lines) + "\n"
