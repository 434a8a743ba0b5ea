"""Routing that learns: which department should hear about an observation the rotator addressed to
nobody in particular.

The router is a linear classifier (scikit-learn ``LinearSVC``) over the observation's normalised words
(1-2 grams), character 3-5 grams (typos, German compounds) and the picked area and category, trained on
the observations whose department a *person* chose: the rotator on the form (``routed_by = rotator``)
or a department head who re-routed it (``routed_by = head``). Suggestions of the router itself and of
the policy table are never learnt from (no feedback loop). With too few examples it abstains and the
policy table (``observations.area_departments``) answers, as before.

Measured by ``bench/routing.py`` on tests/data/observations_eval.jsonl.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from frontline.core import audit
from frontline.digests.themes import normalise
from models import AuditEvent, Department, Observation

REROUTE_ACTION = "observation.rerouted"
LEARN_FROM = ("rotator", "head")  # routed_by values a person chose
MIN_EXAMPLES = 20  # fewer human-routed observations than this: the table answers
MIN_DEPARTMENTS = 2
MAX_EXAMPLES = 20000  # the newest ones (routing habits change)


@dataclass(frozen=True)
class Example:
    text: str
    product_area: str
    category: str
    department: str


def _doc(text: str, area: str, category: str) -> str:
    tag = lambda prefix, v: prefix + "_" + "_".join(v.lower().split())  # noqa: E731
    return f"{normalise(text)} {tag('area', area)} {tag('cat', category)} {tag('areacat', area + ' ' + category)}"


class Router:
    """A trained router; :meth:`suggest` returns a department name or ``None`` (abstain)."""

    def __init__(self, examples: Sequence[Example]):
        self.size = len(examples)
        self.departments = sorted({e.department for e in examples})
        self._model = None
        if self.size < MIN_EXAMPLES or len(self.departments) < MIN_DEPARTMENTS:
            return  # abstain (and never import scikit-learn on the intake path for nothing)
        from scipy.sparse import hstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC

        self._words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+")
        self._chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
        x = hstack(
            [
                self._words.fit_transform([_doc(e.text, e.product_area, e.category) for e in examples]),
                self._chars.fit_transform([e.text.lower() for e in examples]),
            ]
        ).tocsr()
        self._model = LinearSVC(C=1.0).fit(x, [e.department for e in examples])

    @property
    def trained(self) -> bool:
        return self._model is not None

    def rank(self, text: str, product_area: str, category: str) -> list[str]:
        """Departments from most to least likely (empty when untrained)."""
        if self._model is None:
            return []
        from scipy.sparse import hstack

        x = hstack(
            [
                self._words.transform([_doc(text, product_area, category)]),
                self._chars.transform([text.lower()]),
            ]
        ).tocsr()
        scores = self._model.decision_function(x).ravel()
        classes = list(self._model.classes_)
        if len(classes) == 2:  # binary: one score for classes_[1]
            return classes[::-1] if scores[0] > 0 else classes
        return [classes[i] for i in sorted(range(len(classes)), key=lambda i: -scores[i])]

    def suggest(self, text: str, product_area: str, category: str, allowed: Iterable[str]) -> str | None:
        """The most likely department among ``allowed`` (active departments), else ``None``."""
        ok = set(allowed)
        for name in self.rank(text, product_area, category):
            if name in ok:
                return name
        return None


def training_examples(conn: Connection, limit: int = MAX_EXAMPLES) -> list[Example]:
    """The newest observations whose department a person chose (rotator's pick or head's re-route)."""
    rows = conn.execute(
        sa.select(col(Observation.text), col(Observation.product_area), col(Observation.category), col(Department.name))
        .join(Department, col(Department.id) == col(Observation.target_department_id))
        .where(col(Observation.routed_by).in_(LEARN_FROM))
        .order_by(col(Observation.id).desc())
        .limit(limit)
    ).all()
    return [Example(r[0], r[1], r[2], r[3]) for r in rows]


def _version(conn: Connection) -> tuple:
    """Changes when the training set has changed enough to retrain: ~5% more examples, or a re-route."""
    row = conn.execute(
        sa.select(sa.func.count(col(Observation.id)), sa.func.max(col(Observation.id))).where(
            col(Observation.routed_by).in_(LEARN_FROM)
        )
    ).one()
    rerouted = conn.execute(
        sa.select(sa.func.max(col(AuditEvent.id))).where(col(AuditEvent.action) == REROUTE_ACTION)
    ).scalar()
    # Retrain when the examples grew by ~5% (not on every new one: training runs on the intake path)
    # or a head re-routed something (rare, and the point of learning).
    count = int(row[0] or 0)
    bucket = count if count < 2 * MIN_EXAMPLES else int(math.log(count) / math.log(1.05))
    return (str(conn.engine.url), bucket, rerouted)


_cache: dict[str, tuple[tuple, Router]] = {}
_lock = threading.Lock()


def current_router(conn: Connection) -> Router:
    """The router trained on the database's human-routed observations; retrained only when they changed."""
    version = _version(conn)
    key = version[0]
    with _lock:
        hit = _cache.get(key)
        if hit and hit[0] == version:
            return hit[1]
    router = Router(training_examples(conn))
    with _lock:
        _cache[key] = (version, router)
    return router


def forget_routers() -> None:
    with _lock:
        _cache.clear()


def table_problems(area_departments: dict[str, str], departments: Iterable[str]) -> list[str]:
    """Entries of the policy's ``observations.area_departments`` naming a department that ``departments``
    (the roster's active ones) lacks: observations of that area would fall back to the support department
    unnoticed. Reported by ``roster check`` and ``frontline status``."""
    known = {d.lower() for d in departments}
    return [
        f"observations.area_departments: {area!r} -> {dept!r}, but the roster has no active department {dept!r} "
        "(its observations fall back to the support department; fix frontline.toml or departments.csv)"
        for area, dept in sorted(area_departments.items())
        if dept.lower() not in known
    ]


class RerouteError(ValueError):
    """A re-route that cannot be done (unknown observation or department, or no change)."""


def reroute(session: Session, observation_id: int, department: str, *, actor: str, reason: str | None = None) -> str:
    """Send observation ``observation_id`` to the active department named ``department`` ("not ours ->
    Finance"): the router learns from it (``routed_by = head``); audited with the old and new department.
    Returns the department it came from."""
    obs = session.get(Observation, observation_id)
    if obs is None:
        raise RerouteError(f"no observation #{observation_id}")
    target = session.exec(select(Department).where(col(Department.name) == department)).first()
    if target is None or not target.active or target.id is None:
        raise RerouteError(f"no active department named {department!r}")
    old = session.get(Department, obs.target_department_id)
    old_name = old.name if old is not None else ""
    if target.id == obs.target_department_id:
        raise RerouteError(f"observation #{observation_id} is already addressed to {department}")
    obs.target_department_id = target.id
    obs.routed_by = "head"
    session.add(obs)
    audit.record(
        session,
        actor=actor,
        action=REROUTE_ACTION,
        subject_type="observation",
        subject_id=observation_id,
        reason=reason,
        from_department=old_name,
        to_department=target.name,
    )
    session.flush()
    return old_name
