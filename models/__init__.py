"""Tables and the database session helper. Import tables from here so every table is registered."""

from models.db import get_engine, init_db, session_scope
from models.tables import (
    Absence,
    ApiToken,
    AuditEvent,
    CalendarFeedToken,
    ConsoleUser,
    Department,
    DigestOptOut,
    Employee,
    MentorPairing,
    Observation,
    OutboundMessage,
    PairingFeedback,
    PlanRun,
    Rotation,
    utcnow,
)

__all__ = [
    "Absence",
    "ApiToken",
    "AuditEvent",
    "CalendarFeedToken",
    "ConsoleUser",
    "Department",
    "DigestOptOut",
    "Employee",
    "MentorPairing",
    "Observation",
    "OutboundMessage",
    "PairingFeedback",
    "PlanRun",
    "Rotation",
    "get_engine",
    "init_db",
    "session_scope",
    "utcnow",
]
