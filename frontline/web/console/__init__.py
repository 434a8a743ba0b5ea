"""The HR web console (``/console``): one router module per page family, all behind
:mod:`frontline.web.auth` (sign-in, roles, CSRF)."""
