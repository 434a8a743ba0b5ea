"""Every error a user can be shown, in one place.

Each is a :class:`FrontlineError`: the CLI, the console and the flows print its message as it is (it
says what is wrong and, where it helps, what to do) instead of a traceback. Errors that carry a list
of problems (one line per ``file:row: column: message`` or ``FRONTLINE_NAME: message``) derive from
:class:`ProblemsError`.
"""

from __future__ import annotations


class FrontlineError(Exception):
    """Base of every error Frontline reports to a person."""


class ProblemsError(FrontlineError, ValueError):
    """Several problems found at once; ``problems`` lists one message each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class SettingsError(ProblemsError):
    """A FRONTLINE_* setting is invalid; ``problems`` lists ``FRONTLINE_<NAME>: message``."""


class PolicyError(ProblemsError):
    """The policy file is missing, unreadable or invalid; ``problems`` lists ``file: key: message``."""


class RosterError(ProblemsError):
    """The roster cannot be imported; ``problems`` lists every ``file:row: column: message``."""

    def __init__(self, problems: list[str]):
        super().__init__(problems)
        self.args = (f"{len(problems)} problem(s) in the roster:\n" + "\n".join(problems),)


class LeaversNotConfirmed(RosterError):
    """A roster import would mark more active employees as left than the policy allows without a
    confirmation: ``count`` of ``active`` (``allowed`` without one), cancelling ``rotations`` future
    rotations. Nothing was written; confirming at least ``count`` lets the import through."""

    def __init__(self, problem: str, count: int, active: int, allowed: int, rotations: int):
        super().__init__([problem])
        self.count, self.active, self.allowed, self.rotations = count, active, allowed, rotations

    def __reduce__(self):  # pickled as a flow run's result: rebuild it from its own fields
        return (type(self), (self.problems[0], self.count, self.active, self.allowed, self.rotations))


class PlanningError(FrontlineError, ValueError):
    """An override or request breaks a rule; the message says which and why."""


class PlanningBusy(PlanningError):
    """Another writer of the plan or the pairings held the planning lock (``models.db.planning_lock``)
    longer than this one would wait. Nothing was written.

    ``holder`` is the writer that gave up, ``who`` the one holding the lock (name, process, since when),
    ``waited`` the seconds waited. On the command line the message names both and the setting that sets
    the wait; in a web request (``interactive``: HR's console, SCIM, a mentor's answer) it names both and
    says to try again in a minute (the setting is the command line's). :attr:`brief` says only that
    another change is running, for pages people outside HR see (a mentor's, a rotator's): they have no use
    for HR's e-mail address and a process id."""

    brief = "Another change to the plan or the pairings is still running; nothing was written. Try again in a minute."

    def __init__(self, holder: str, who: str, waited: float, *, interactive: bool = False):
        self.holder, self.who, self.waited, self.interactive = holder, who, waited, interactive
        if interactive:
            text = f"{self.detail()}; nothing was written. Try again in a minute."
        else:
            text = f"{self.detail()} (FRONTLINE_PLANNING_LOCK_WAIT), nothing was written. Run it again when that one has finished."
        super().__init__(text)

    def detail(self) -> str:
        return (
            f"{self.holder}: another writer of the plan or the pairings is still running ({self.who}); "
            f"waited {self.waited:.0f} s"
        )

    def __reduce__(self):  # pickled as a flow run's result: rebuild it from its own fields
        return (_planning_busy, (self.holder, self.who, self.waited, self.interactive))


def _planning_busy(holder: str, who: str, waited: float, interactive: bool) -> PlanningBusy:
    return PlanningBusy(holder, who, waited, interactive=interactive)


class OverrideRefused(PlanningError):
    """An override (move, defer, add) breaks a hard rule. ``problem`` says which; ``alternatives`` are the
    nearest start Mondays (ISO dates) that fit every rule; ``partners`` the rotations that would make the
    requested week fit (dicts with ``rotation_id``, ``employee_id``, ``name``, ``start``, ``end`` and ``how``:
    ``swap`` = exchange the two start weeks with ``frontline plan swap``, ``room`` = move or defer that
    rotation first). ``rotation_id`` is the rotation asked about (None for an added one)."""

    def __init__(
        self,
        problem: str,
        wanted: str,
        alternatives: list[str],
        partners: list[dict],
        rotation_id: int | None = None,
    ):
        self.problem, self.wanted, self.rotation_id = problem, wanted, rotation_id
        self.alternatives, self.partners = list(alternatives), list(partners)
        super().__init__(self.text())

    def text(self) -> str:
        lines = [self.problem]
        if self.alternatives:
            lines.append("nearest weeks that fit: " + ", ".join(self.alternatives))
        else:
            lines.append("no week within half a year of it fits")
        target = str(self.rotation_id) if self.rotation_id is not None else "ROTATION"
        for p in self.partners:
            who = f"{p['employee_id']} {p['name']} (rotation {p['rotation_id']}, {p['start']}..{p['end']})"
            if p["how"] == "swap":
                lines.append(
                    f"swap partner for {self.wanted}: {who}: frontline plan swap {target} {p['rotation_id']} --reason ..."
                )
            else:
                lines.append(f"{self.wanted} fits if this rotation moves or is deferred first: {who}")
        return "\n".join(lines)

    def __reduce__(self):
        return (type(self), (self.problem, self.wanted, self.alternatives, self.partners, self.rotation_id))


class PairingError(PlanningError):
    """The pairing cannot run as configured (for example the policy names no existing support department)."""


class DigestError(FrontlineError, ValueError):
    """Bad digest input (week format, unknown department)."""


class BackupError(FrontlineError):
    """A file that cannot be imported, or a database that must not be overwritten."""


class DemoError(FrontlineError):
    """The demo cannot start (for example its folder cannot be created)."""


class AccessDenied(FrontlineError):
    """The console refuses a request: no role for this page or account, or a form without a valid CSRF token."""


class SignInLinkError(AccessDenied):
    """A console sign-in link that is expired, not valid or already used (the person asks for a new one)."""
