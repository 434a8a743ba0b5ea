"""Weekly department digests; :mod:`frontline.digests.service` lists the entry points and the module of
each job (weeks, loading, content, render, queue, theme actions, themes)."""
