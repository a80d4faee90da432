"""The scheduled CAPA overdue check: each action past its due date and each effectiveness
check past its due date raises one audit event, the first time a run finds it overdue."""
from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qms.audit_actions import AuditAction
from qms.auditing import SYSTEM_ACTOR, record_event
from qms.capa.models import Capa, CapaAction

# closed and cancelled CAPA owe nothing; an effectiveness check is owed only in its state
LIVE_STATES = ("open", "implementing", "effectiveness_check", "pending_closure")


def report_overdue_capa(session: Session, today: date) -> list[dict[str, Any]]:
    """Write one ``capa.action.overdue`` event (actor ``system``, entity the CAPA) per
    uncompleted action due before ``today``, and one ``capa.effectiveness.overdue`` per CAPA
    waiting for its effectiveness result past its due date, and remember each so that later
    runs stay silent about it (an effectiveness check is remembered by its due date: a CAPA
    reopened and given a new due date can be reported again). Returns what it reported.
    Flushes, never commits."""
    return [*_overdue_actions(session, today), *_overdue_effectiveness(session, today)]


def _overdue_actions(session: Session, today: date) -> list[dict[str, Any]]:
    rows = session.execute(
        select(CapaAction, Capa.number).join(Capa, Capa.id == CapaAction.capa_id)
        .where(CapaAction.completed_at.is_(None), CapaAction.due_on < today,
               CapaAction.overdue_reported_on.is_(None), Capa.state.in_(LIVE_STATES))
        .order_by(Capa.number, CapaAction.position).with_for_update(of=CapaAction)).all()
    reported = []
    for action, number in rows:
        item = {"capa": number, "action": action.position, "owner": action.owner,
                "due_on": action.due_on.isoformat(),
                "days_overdue": (today - action.due_on).days}
        action.overdue_reported_on = today
        record_event(session, actor=SYSTEM_ACTOR, action=AuditAction.Capa.ACTION_OVERDUE,
                     data=item, entity=("capa", number))
        reported.append({"event": AuditAction.Capa.ACTION_OVERDUE.value, **item})
    return reported


def _overdue_effectiveness(session: Session, today: date) -> list[dict[str, Any]]:
    capas = session.scalars(
        select(Capa).where(Capa.state == "effectiveness_check",
                           Capa.effectiveness_due_on < today)
        .order_by(Capa.number).with_for_update(of=Capa)).all()
    reported = []
    for capa in capas:
        if capa.effectiveness_overdue_reported_for == capa.effectiveness_due_on:
            continue
        item = {"capa": capa.number, "owner": capa.owner,
                "due_on": capa.effectiveness_due_on.isoformat(),
                "days_overdue": (today - capa.effectiveness_due_on).days}
        capa.effectiveness_overdue_reported_for = capa.effectiveness_due_on
        record_event(session, actor=SYSTEM_ACTOR,
                     action=AuditAction.Capa.EFFECTIVENESS_OVERDUE, data=item,
                     entity=("capa", capa.number))
        reported.append({"event": AuditAction.Capa.EFFECTIVENESS_OVERDUE.value, **item})
    return reported
