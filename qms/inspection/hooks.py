"""The inspection module's registrations with the materials module (qms.materials.hooks), made
when the inspection models are imported, so that every way of receiving or disposing of a lot
(API, CLI, demo data, jobs) sees them: an incoming inspection opens when a lot is received
while an effective incoming plan exists, and QA's manual disposition of a lot is refused while
its incoming inspection awaits the usage decision (and a produced lot's release while an
inspection of its batch is not accepted)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from qms.identity.models import User
from qms.materials.hooks import lot_disposition_checks, on_lot_received
from qms.records.workflow import Transition

if TYPE_CHECKING:
    from qms.materials.models import Lot


def open_incoming_inspection(session: Session, lot: "Lot", actor: User) -> None:
    from qms.inspection.service import open_on_receipt
    open_on_receipt(session, lot, actor)


def refuse_disposition_during_inspection(session: Session, lot: "Lot", transition: Transition,
                                         actor: User) -> None:
    from qms.inspection.decisions import refuse_manual_disposition
    refuse_manual_disposition(session, lot, transition, actor)


if open_incoming_inspection not in on_lot_received:
    on_lot_received.append(open_incoming_inspection)
if refuse_disposition_during_inspection not in lot_disposition_checks:
    lot_disposition_checks.append(refuse_disposition_during_inspection)
