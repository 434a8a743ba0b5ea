"""Weekly department digests: what customers told each department, how big it is, whether it grows.

The public entry points of the digests, for flows, the CLI, the web pages and the demo. Each is defined
in the module of its job and only named here:

* :mod:`frontline.digests.weeks`: the digest's period, one ISO week in the organisation time zone;
* :mod:`frontline.digests.loading`: the week's observations, departments, rotations and opt-outs as
  plain data, and the week's themes (:mod:`frontline.digests.themes`), computed once per run over the
  week *and* the previous week and stored on the observations;
* :mod:`frontline.digests.content`: what one department's digest says (routing, numbers, themes,
  urgent items, what was acted on, who rotates);
* :mod:`frontline.digests.render`: HTML and text for one recipient, within the size budget;
* :mod:`frontline.digests.queue`: one message per recipient through the outbox (a re-run queues
  nothing new), previews, opting out;
* :mod:`frontline.digests.theme_actions`: a theme's action link, applied through
  :func:`frontline.observations.acknowledgement.set_ack_state`.
"""

from __future__ import annotations

from frontline.core.errors import DigestError
from frontline.digests.content import ACK_LABELS, BAR_MAX_PX, DigestContent, build_digest
from frontline.digests.loading import (
    ThemeKey,
    WeekData,
    all_department_ids,
    compute_themes,
    department_ids_named,
    load_week,
)
from frontline.digests.queue import (
    Outcome,
    digest_department,
    idempotency_key,
    preview_digests,
    queue_digests,
    recipients_for,
    unsubscribe,
)
from frontline.digests.render import MAX_HTML_BYTES, SIZE_BUDGET, RenderedDigest, render_digest
from frontline.digests.theme_actions import (
    ThemeLink,
    ThemeView,
    apply_theme_action,
    recipient_still_current,
    theme_observations,
    theme_view,
)
from frontline.digests.weeks import last_completed_week, parse_week, shift_week, week_monday, week_window

__all__ = [
    "ACK_LABELS",
    "BAR_MAX_PX",
    "MAX_HTML_BYTES",
    "SIZE_BUDGET",
    "DigestContent",
    "DigestError",
    "Outcome",
    "RenderedDigest",
    "ThemeKey",
    "ThemeLink",
    "ThemeView",
    "WeekData",
    "all_department_ids",
    "apply_theme_action",
    "build_digest",
    "compute_themes",
    "department_ids_named",
    "digest_department",
    "idempotency_key",
    "last_completed_week",
    "load_week",
    "parse_week",
    "preview_digests",
    "queue_digests",
    "recipient_still_current",
    "recipients_for",
    "render_digest",
    "shift_week",
    "theme_observations",
    "theme_view",
    "unsubscribe",
    "week_monday",
    "week_window",
]
