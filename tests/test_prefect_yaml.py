"""``prefect.yaml`` is valid: every entrypoint is a Prefect flow, every flow has a deployment, schedules,
time zones, parameters, concurrency limits and triggers parse with Prefect's own models."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PREFECT_YAML = ROOT / "prefect.yaml"
POOL = "frontline-pool"
# Deployments whose runs must never overlap (a second run waits or is dropped, never runs alongside).
NO_OVERLAP = {"plan-rotations", "deliver-mail"}


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(PREFECT_YAML.read_text())


@pytest.fixture(scope="module")
def deployments(config) -> list[dict]:
    return config["deployments"]


def _load(entrypoint: str):
    path, _, name = entrypoint.partition(":")
    assert path.endswith(".py") and name, f"entrypoint {entrypoint!r} is not path/to/file.py:flow_function"
    assert (ROOT / path).is_file(), f"entrypoint file {path} does not exist"
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def all_flows() -> dict[str, object]:
    """module:function -> Flow for every flow defined in the flows package."""
    from prefect import Flow

    import flows

    found = {}
    for info in pkgutil.iter_modules(flows.__path__):
        module = importlib.import_module(f"flows.{info.name}")
        for attr, value in vars(module).items():
            if isinstance(value, Flow) and value.__module__ == module.__name__:
                found[f"flows/{info.name}.py:{attr}"] = value
    return found


def test_every_entrypoint_is_a_flow_and_parameters_match(deployments):
    from prefect import Flow

    names = [d["name"] for d in deployments]
    assert len(names) == len(set(names)), "deployment names are unique"
    for d in deployments:
        flow = _load(d["entrypoint"])
        assert isinstance(flow, Flow), f"{d['name']}: {d['entrypoint']} is not a Prefect flow"
        signature = inspect.signature(flow.fn)
        unknown = set(d.get("parameters") or {}) - set(signature.parameters)
        assert not unknown, f"{d['name']}: parameters {unknown} are not arguments of {flow.name}"
        assert d.get("description"), f"{d['name']}: describe what the deployment does"


def test_every_flow_has_a_deployment(deployments):
    deployed = {d["entrypoint"] for d in deployments}
    missing = sorted(set(all_flows()) - deployed)
    assert not missing, f"flows without a deployment in prefect.yaml: {missing}"
    modules = {
        p.stem for p in (ROOT / "flows").glob("*.py") if p.stem not in {"__init__", "common", "jobs", "runner"}
    }  # common: shared helpers; jobs: the flows' bodies without Prefect; runner: how commands run them
    assert modules == {e.split(":")[0].removeprefix("flows/").removesuffix(".py") for e in deployed}


def test_schedules_cron_and_time_zones_are_valid(deployments):
    from prefect.client.schemas.schedules import CronSchedule

    for d in deployments:
        for schedule in d.get("schedules") or []:
            assert set(schedule) <= {"cron", "timezone", "day_or", "active"}, f"{d['name']}: {schedule}"
            assert schedule.get("timezone"), f"{d['name']}: every schedule names its time zone"
            CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"], day_or=schedule.get("day_or", True))


def test_expected_schedules(deployments):
    by_name = {d["name"]: d for d in deployments}
    crons = {name: [s["cron"] for s in d.get("schedules") or []] for name, d in by_name.items()}
    if (ROOT / "flows" / "plan.py").exists():
        assert crons["plan-rotations"] and crons["plan-rotations"][0].split()[2:] == ["*", "*", "*"], "nightly"
    assert crons["send-digests"] == ["0 7 * * 1"], "Monday 07:00"
    for hourly in ("send-invites", "send-reminders", "escalate-overdue"):
        if hourly in crons:
            minute, hour = crons[hourly][0].split()[:2]
            assert minute.isdigit() and hour == "*", f"{hourly} runs hourly"
    assert crons["deliver-mail"][0].startswith("*/"), "mail delivery every few minutes"


def test_work_pool_pull_step_and_concurrency(config, deployments):
    from prefect.client.schemas.objects import ConcurrencyLimitConfig

    pull = config.get("pull") or []
    assert any("prefect.deployments.steps.set_working_directory" in step for step in pull)
    for d in deployments:
        assert d["work_pool"]["name"] == POOL, f"{d['name']} runs on the process pool {POOL}"
        limit = d.get("concurrency_limit")
        if d["name"] in NO_OVERLAP or d["entrypoint"] == "flows/onboarding.py:onboard_new_hire":
            assert limit, f"{d['name']} must never overlap"
            parsed = ConcurrencyLimitConfig(**limit) if isinstance(limit, dict) else ConcurrencyLimitConfig(limit=limit)
            assert parsed.limit == 1


def test_onboarding_trigger(deployments):
    from prefect.events import DeploymentEventTrigger

    onboarding = [d for d in deployments if d["entrypoint"] == "flows/onboarding.py:onboard_new_hire"]
    assert len(onboarding) == 1
    triggers = onboarding[0]["triggers"]
    assert len(triggers) == 1
    trigger = DeploymentEventTrigger(**{k: v for k, v in triggers[0].items() if k != "enabled"})
    assert trigger.expect == {"frontline.employee.hired"}
    assert "event.resource.id" in str(trigger.parameters["employee_id"])
