"""Prefect flows: thin wrappers over the domain functions in ``frontline``, one module per job."""
