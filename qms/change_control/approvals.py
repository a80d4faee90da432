"""Which approvals a change control needs, and which of them a signer fills: plain functions
over the risk level, the slots already filled and the signer's roles, without a database.

low: one QA approver; medium: a QA approver and production; high: two different QA approvers
and production. A signer fills a QA slot when one is open and they hold ``qa_approver``,
else the production slot when it is open and they hold ``production``. That nobody fills two
slots of one change (and the author none) is the workflow's segregation rule
``["not_author", "not_signer:approved"]``, checked with the signature.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

QA_APPROVER, PRODUCTION = "qa_approver", "production"


@dataclass(frozen=True)
class Slot:
    """One approval a change control needs: its name and the role that may fill it."""
    name: str
    role: str


QA_1, QA_2, PRODUCTION_SLOT = Slot("qa_1", QA_APPROVER), Slot("qa_2", QA_APPROVER), \
    Slot("production", PRODUCTION)

# QA slots first: a signer who holds both roles fills a QA slot while one is open
REQUIRED_SLOTS: dict[str, tuple[Slot, ...]] = {
    "low": (QA_1,),
    "medium": (QA_1, PRODUCTION_SLOT),
    "high": (QA_1, QA_2, PRODUCTION_SLOT),
}
RISKS = tuple(REQUIRED_SLOTS)


def required_slots(risk: str) -> tuple[Slot, ...]:
    """The approvals a change of this risk level needs, QA slots first."""
    try:
        return REQUIRED_SLOTS[risk]
    except KeyError:
        raise ValueError(f"unknown risk level {risk!r}") from None


def open_slots(risk: str, filled: Iterable[str]) -> list[Slot]:
    """The required slots not yet filled (``filled``: names of filled slots)."""
    taken = set(filled)
    return [slot for slot in required_slots(risk) if slot.name not in taken]


def slot_for(risk: str, filled: Iterable[str], signer_roles: Iterable[str]) -> Slot | None:
    """The slot a signer with ``signer_roles`` fills next, or None when no open slot is
    for their roles."""
    roles = set(signer_roles)
    return next((slot for slot in open_slots(risk, filled) if slot.role in roles), None)


def approvals_complete(risk: str, filled: Iterable[str]) -> bool:
    return not open_slots(risk, filled)
