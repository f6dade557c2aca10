"""Typed SQLAlchemy 2.0 models, one module per aggregate. Import this package to register all."""

from models.base import Base
from models.bulletins import (
    Alert,
    AlertAck,
    AlertDelivery,
    Bulletin,
    BulletinDelivery,
    BulletinRun,
)
from models.console import AuditEntry, ConsoleAccount, ConsoleFormUse, ConsoleSession
from models.directory import DirectoryVersion, Group, Officer, RosterEntry, Station
from models.disputes import DisputeCase, DisputeEvent
from models.journal import InboundEvent
from models.outbox import OutboxMessage, RateCounter, SendPace
from models.people import (
    Binding,
    GroupMember,
    Household,
    Member,
    PendingItem,
    VerificationCode,
)
from models.tickets import JobRun, Ticket, TicketEvent, TicketReporter
from models.tokens import AccessTokenCache, ApiToken, IdempotencyKey
from models.visits import HouseholdEvent, Visit, VisitChoice, VisitPlan

__all__ = [
    "AccessTokenCache",
    "Alert",
    "AlertAck",
    "AlertDelivery",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Binding",
    "Bulletin",
    "BulletinDelivery",
    "BulletinRun",
    "ConsoleAccount",
    "ConsoleFormUse",
    "ConsoleSession",
    "DirectoryVersion",
    "DisputeCase",
    "DisputeEvent",
    "Group",
    "GroupMember",
    "Household",
    "HouseholdEvent",
    "IdempotencyKey",
    "InboundEvent",
    "JobRun",
    "Member",
    "Officer",
    "OutboxMessage",
    "PendingItem",
    "RateCounter",
    "RosterEntry",
    "SendPace",
    "Station",
    "Ticket",
    "TicketEvent",
    "TicketReporter",
    "VerificationCode",
    "Visit",
    "VisitChoice",
    "VisitPlan",
]
