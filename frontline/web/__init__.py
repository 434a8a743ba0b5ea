"""The web app (FastAPI + server-rendered Jinja2): observation form and API, calendar feeds, surveys,
acknowledgements and the HR console. ``frontline serve`` runs it with uvicorn."""
