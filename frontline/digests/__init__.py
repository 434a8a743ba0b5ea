"""Weekly department digests: what customers told each department, how big it is, whether it grows.

The digests' modules, one per job:

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
