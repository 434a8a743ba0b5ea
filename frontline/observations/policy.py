"""The policy as the observation hot paths read it: parsed once, parsed again only when the file changes."""

from __future__ import annotations

from pathlib import Path

from frontline.core.policy import Policy, load_policy

_policy_cache: dict[str, tuple[int, Policy]] = {}


def current_policy(path: Path | str | None = None) -> Policy:
    """The policy file, parsed once and re-read only when the file changes (hot paths call this)."""
    if path is None:
        from frontline.core.settings import get_settings

        path = get_settings().policy_path
    key = str(path)
    try:
        mtime = Path(path).stat().st_mtime_ns
    except OSError:
        return load_policy(path)  # raises the clear PolicyError
    cached = _policy_cache.get(key)
    if cached and cached[0] == mtime:
        return cached[1]
    policy = load_policy(path)
    _policy_cache[key] = (mtime, policy)
    return policy


def forget_cached_policies() -> None:
    """Drop every cached policy (tests that rewrite the file within one mtime tick)."""
    _policy_cache.clear()
