"""The one theme grouping over stored observations: the digest, the console and
``frontline observe themes`` all call :func:`group_observations`.

Embeddings are cached per observation (``ObservationEmbedding``, keyed by the model id), so a text is
embedded once in its life however many digests, pages and commands group it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col

from frontline.digests import embeddings
from frontline.digests.themes import Theme, ThemeInput, find_themes
from models import Department, Observation, ObservationEmbedding

_INSERT_CHUNK = 500


def observation_vectors(session: Session, items: Sequence[ThemeInput]) -> dict[int, np.ndarray]:
    """``{observation id: vector}`` for ``items`` (ids are Observation ids): stored ones, the rest
    computed now and stored. Empty when the embedding model is unavailable."""
    embed = embeddings.embedder()
    if embed is None or not items:
        return {}
    ids = sorted({int(i.id) for i in items})  # type: ignore[call-overload]
    found: dict[int, np.ndarray] = {}
    stale: list[int] = []
    for start in range(0, len(ids), _INSERT_CHUNK):
        chunk = ids[start : start + _INSERT_CHUNK]
        rows = session.connection().execute(
            sa.select(
                col(ObservationEmbedding.observation_id),
                col(ObservationEmbedding.model),
                col(ObservationEmbedding.vector),
            ).where(col(ObservationEmbedding.observation_id).in_(chunk))
        )
        for oid, model, blob in rows:
            if model == embeddings.MODEL_ID:
                found[oid] = embeddings.from_bytes(blob)
            else:
                stale.append(oid)
    missing = [i for i in items if int(i.id) not in found]  # type: ignore[call-overload]
    if missing:
        fresh = embed([i.text for i in missing])
        conn = session.connection()
        if stale:
            conn.execute(sa.delete(ObservationEmbedding).where(col(ObservationEmbedding.observation_id).in_(stale)))
        values = []
        for item, vector in zip(missing, fresh, strict=True):
            oid = int(item.id)  # type: ignore[call-overload]
            if oid in found:
                continue
            found[oid] = vector
            values.append({"observation_id": oid, "model": embeddings.MODEL_ID, "vector": embeddings.to_bytes(vector)})
        for start in range(0, len(values), _INSERT_CHUNK):
            conn.execute(sa.insert(ObservationEmbedding), values[start : start + _INSERT_CHUNK])
    return found


def group_observations(
    session: Session, items: Sequence[ThemeInput], *, max_new_embeddings: int | None = None
) -> list[Theme]:
    """Themes of ``items`` (ids are Observation ids), with the cached embeddings. With
    ``max_new_embeddings`` (a web page that must answer quickly), more texts than that without a stored
    vector make it use the lexical grouping this time (the digest run stores them)."""
    from frontline.core.settings import get_settings

    items = list(items)
    if not get_settings().theme_embeddings:
        return find_themes(items, embed=False)
    if max_new_embeddings is not None and _unembedded(session, items) > max_new_embeddings:
        return find_themes(items, embed=False)
    return find_themes(items, vectors=observation_vectors(session, items))


def _unembedded(session: Session, items: Sequence[ThemeInput]) -> int:
    ids = sorted({int(i.id) for i in items})  # type: ignore[call-overload]
    have = 0
    for start in range(0, len(ids), _INSERT_CHUNK):
        chunk = ids[start : start + _INSERT_CHUNK]
        have += int(
            session.connection()
            .execute(
                sa.select(sa.func.count(col(ObservationEmbedding.id))).where(
                    col(ObservationEmbedding.observation_id).in_(chunk),
                    col(ObservationEmbedding.model) == embeddings.MODEL_ID,
                )
            )
            .scalar()
            or 0
        )
    return len(ids) - have


@dataclass
class ThemeRow:
    """One theme of ``frontline observe themes``."""

    label: str
    product_area: str
    category: str
    observation_ids: list[int]
    departments: dict[str, int]  # target department -> how many of the theme's observations


def themes_between(
    session: Session, start: datetime, end: datetime, *, department: str | None = None
) -> list[ThemeRow]:
    """Themes of the observations created in ``[start, end)``, grouped over all departments (so a theme
    is the same whoever asks), then, with ``department``, only the themes holding observations
    addressed to it, with only those observations. Largest first."""
    rows = (
        session.connection()
        .execute(
            sa.select(
                col(Observation.id),
                col(Observation.text),
                col(Observation.product_area),
                col(Observation.category),
                col(Department.name),
            )
            .join(Department, col(Department.id) == col(Observation.target_department_id))
            .where(col(Observation.created_at) >= start, col(Observation.created_at) < end)
            .order_by(col(Observation.id))
        )
        .all()
    )
    dept_of = {r[0]: r[4] for r in rows}
    themes = group_observations(session, [ThemeInput(r[0], r[1], r[2], r[3]) for r in rows])
    out: list[ThemeRow] = []
    for t in themes:
        ids = [int(i) for i in t.member_ids if department is None or dept_of[i] == department]
        if not ids:
            continue
        counts: dict[str, int] = {}
        for i in ids:
            counts[dept_of[i]] = counts.get(dept_of[i], 0) + 1
        out.append(ThemeRow(t.label, t.product_area, t.category, ids, counts))
    out.sort(key=lambda r: (-len(r.observation_ids), r.label))
    return out
