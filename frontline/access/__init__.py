"""Who may use the HR web console, and how they prove it: console accounts (HR admins), principals
(the roles of a signed-in person), magic-link sign-in with its rate limit, and the signed session and
CSRF tokens behind the console's cookie.

Services only: :mod:`frontline.web.auth` holds the routes and FastAPI dependencies that call them.

* :mod:`frontline.access.principal`: :class:`~frontline.access.principal.Principal` and
  :func:`~frontline.access.principal.load_principal` (roles come from the database on every request);
* :mod:`frontline.access.accounts`: HR admins (``frontline users add-hr`` / ``remove-hr`` / ``list``);
* :mod:`frontline.access.signin`: issuing and consuming single-use sign-in links;
* :mod:`frontline.access.sessions`: the signed session payload, CSRF tokens and flash messages.
"""
