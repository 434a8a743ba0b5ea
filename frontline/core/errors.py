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
