"""Frontline: everyone on the customer-support front line.

The domain lives here as plain Python over plain data; Prefect flows in ``flows/`` orchestrate it and
SQLModel tables in ``models/`` hold the state.
"""

__version__ = "0.1.0"
