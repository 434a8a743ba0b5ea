"""``frontline observe themes``: the digest's grouping over stored observations, as JSON; embeddings are
stored once per observation and reused."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from observation_factories import world_ids
from sqlmodel import select

from models import Department, Observation, ObservationEmbedding, session_scope

NOTES = [
    ("export", "bug", "Engineering", "CSV export turns Müller into MÃ¼ller, umlauts broken"),
    ("export", "bug", "Engineering", "Der CSV-Export zerstört die Umlaute in den Namen"),
    ("other", "bug", "Support", "umlauts garbled in the csv export again, José is JosÃ©"),
    ("shipping", "delivery_fulfilment", "Operations", "parcel arrived crushed, reader screen cracked"),
    ("shipping", "delivery_fulfilment", "Operations", "Paket kam beschädigt an, Display gesprungen"),
    ("shipping", "delivery_fulfilment", "Operations", "box was crushed in transit, thin packaging"),
]


@pytest.fixture
def stored(monkeypatch, sqlite_settings, sqlite_engine):
    from frontline.core.settings import get_settings

    monkeypatch.setenv("FRONTLINE_THEME_EMBEDDINGS", "true")  # the real model (conftest turns it off)
    get_settings.cache_clear()
    assert get_settings().theme_embeddings
    world = world_ids(sqlite_settings, sqlite_engine)
    ids = []
    with session_scope(sqlite_engine) as session:
        dept = {d.name: d.id for d in session.exec(select(Department)).all()}
        for day, (area, category, target, text) in enumerate(NOTES, start=1):
            o = Observation(
                text=text,
                impact=3,
                product_area=area,
                category=category,
                target_department_id=dept[target],
                created_at=datetime(2026, 11, day, 12, tzinfo=UTC),
            )
            session.add(o)
            session.flush()
            ids.append(o.id)
        late = Observation(
            text="CSV export umlauts broken once more",
            impact=3,
            product_area="export",
            category="bug",
            target_department_id=dept["Engineering"],
            created_at=datetime(2026, 11, 20, 12, tzinfo=UTC),
        )
        session.add(late)
    return world, ids


def _themes(*args):
    from typer.testing import CliRunner

    from frontline.cli import app

    r = CliRunner().invoke(app, ["observe", "themes", *args])
    assert r.exit_code == 0, r.output
    return r.output


def test_observe_themes_json_groups_across_languages_and_areas(stored, sqlite_engine):
    _world, ids = stored
    out = json.loads(_themes("--from", "2026-11-01", "--to", "2026-11-06", "--format", "json"))
    groups = sorted(sorted(t["observation_ids"]) for t in out["themes"])
    assert groups == [ids[:3], ids[3:]]  # the later observation (Nov 20) is outside the window
    for t in out["themes"]:
        assert t["label"] and "[" not in t["label"] and len(t["label"]) <= 70
    # one vector per observation, stored; a second run reuses them (same answer, no new rows)
    with session_scope(sqlite_engine) as session:
        stored_ids = sorted(session.exec(select(ObservationEmbedding.observation_id)).all())
    assert stored_ids == sorted(ids)
    again = json.loads(_themes("--from", "2026-11-01", "--to", "2026-11-06", "--format", "json"))
    assert again == out


def test_observe_themes_for_one_department_keeps_only_its_observations(stored):
    _world, ids = stored
    out = json.loads(
        _themes("--from", "2026-11-01", "--to", "2026-11-06", "--department", "Support", "--format", "json")
    )
    # the Support note is grouped with the Engineering umlaut notes, but Support sees only its own one
    assert [t["observation_ids"] for t in out["themes"]] == [[ids[2]]]
    assert out["themes"][0]["departments"] == {"Support": 1}


def test_observe_themes_refuses_bad_input(stored):
    from typer.testing import CliRunner

    from frontline.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["observe", "themes", "--from", "2026-11-05", "--to", "2026-11-01"]).exit_code != 0
    r = runner.invoke(app, ["observe", "themes", "--from", "2026-11-01", "--to", "2026-11-05", "--department", "Nope"])
    assert r.exit_code != 0 and "no department" in r.output


def test_a_page_that_must_answer_fast_embeds_few_new_texts(stored, sqlite_engine):
    from frontline.digests.grouping import group_observations
    from frontline.digests.themes import ThemeInput

    _world, ids = stored
    with session_scope(sqlite_engine) as session:
        items = [
            ThemeInput(o.id, o.text, o.product_area, o.category)
            for o in session.exec(select(Observation).where(Observation.id.in_(ids))).all()
        ]
        lexical = group_observations(session, items, max_new_embeddings=len(items) - 1)
        assert session.exec(select(ObservationEmbedding)).all() == []  # too many new texts: none embedded now
        # the lexical fallback keeps (area, category) apart: the wrongly filed umlaut note is alone
        assert [ids[2]] in [sorted(t.member_ids) for t in lexical]
        semantic = group_observations(session, items, max_new_embeddings=len(items))
        assert sorted(sorted(t.member_ids) for t in semantic) == [ids[:3], ids[3:]]
