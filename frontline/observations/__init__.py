"""Observations: what rotators hear from customers, from intake to the answer they get back.

* :mod:`~frontline.observations.intake`: validation, redaction, storage, idempotency, the hourly limit
  (:func:`~frontline.observations.intake.submit_batch` and the one-at-a-time ``submit``);
* :mod:`~frontline.observations.redaction`: PII removed before anything is stored;
* :mod:`~frontline.observations.escalation`: urgent ones mailed at once, and again after the SLA;
* :mod:`~frontline.observations.acknowledgement`: acknowledged / planned / fixed / won't fix, and the
  mail that tells the rotator;
* :mod:`~frontline.observations.api_tokens`: bearer tokens of the JSON API;
* :mod:`~frontline.observations.search`: the console's filter and queries;
* :mod:`~frontline.observations.rotators`: a rotator's rotation, mentor and own observations;
* :mod:`~frontline.observations.vocabulary` and :mod:`~frontline.observations.policy`: the shared words
  and the cached policy.
"""
