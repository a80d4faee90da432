"""Reading what the release gates judge about one batch: its inspections, the lots it
consumed as they stood when consumed (from their stored versions), the deviations naming it
or its inputs, and the reviews of its record. Reads only."""
from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from qms.dates import today as site_today
from qms.deviations.models import OPEN_STATES, Deviation, DeviationLot, named_now
from qms.deviations.service import linked_capas
from qms.esign.service import signatures_of, verify_stored_signature
from qms.inspection.models import Inspection, InspectionPlan
from qms.inspection.plans import EFFECTIVE
from qms.materials.models import LOTS, Batch, Lot, LotConsumption
from qms.records.models import RecordVersion
from qms.records.service import current_content_hash
from qms.release.gates import (CANCELLED, IN_PROCESS, Consumed, DeviationFact, InputFact,
                               InspectionFact, ReleaseFacts, ReviewFact)

REVIEWED = "reviewed"


def release_facts(session: Session, batch: Batch, *, today: date | None = None) -> ReleaseFacts:
    """Everything the gates judge about ``batch``, as the session sees it now."""
    inputs = _inputs(session, batch)
    counted = {number for number, fact in inputs.items() if fact.net_quantity > 0}
    lots = {batch.lot.number: batch.lot_id, **_lot_ids(session, counted)}
    deviations = _deviations(session, lots)
    open_deviations = tuple(d for d in deviations if d.state in OPEN_STATES)
    held_by = defaultdict(list)
    for deviation in open_deviations:
        for number in deviation.names:
            held_by[number].append(deviation.number)
    return ReleaseFacts(
        batch=batch.number, lot=batch.lot.number, lot_status=batch.lot.state,
        expires_on=batch.lot.expires_on, today=today or site_today(),
        inspections=_inspections(session, batch),
        plan_operations=_plan_operations(session, batch),
        inputs=tuple(InputFact(f.lot, f.status, f.entries, tuple(held_by[f.lot]))
                     for f in inputs.values()),
        open_deviations=open_deviations,
        capa_deviations=tuple(d for d in deviations
                              if d.state != CANCELLED and d.capa_required),
        reviews=_reviews(session, batch))


def _inspections(session: Session, batch: Batch) -> tuple[InspectionFact, ...]:
    rows = session.execute(select(Inspection.number, Inspection.stage, Inspection.operation,
                                  Inspection.state)
                           .where(Inspection.batch_id == batch.id).order_by(Inspection.id))
    return tuple(InspectionFact(*row) for row in rows)


def _plan_operations(session: Session, batch: Batch) -> tuple[str, ...]:
    return tuple(session.scalars(
        select(InspectionPlan.operation).distinct()
        .where(InspectionPlan.material_id == batch.material_id,
               InspectionPlan.stage == IN_PROCESS, InspectionPlan.state == EFFECTIVE)
        .order_by(InspectionPlan.operation)))


def _inputs(session: Session, batch: Batch) -> dict[str, InputFact]:
    """Each consumed lot (by number, in number order) with every entry of it, each judged by
    the lot's version in force at the moment of consumption."""
    rows = session.execute(
        select(Lot.number, Lot.state, LotConsumption.quantity, LotConsumption.consumed_at)
        .join(Lot, Lot.id == LotConsumption.input_lot_id)
        .where(LotConsumption.batch_id == batch.id)
        .order_by(Lot.number, LotConsumption.id)).all()
    history = _lot_versions(session, {number for number, *_ in rows})
    entries, status = defaultdict(list), {}
    for number, state, quantity, consumed_at in rows:
        status[number] = state
        status_then, expires_then = _as_of(history[number], consumed_at)
        entries[number].append(Consumed(quantity, site_day(consumed_at), status_then,
                                        expires_then))
    return {number: InputFact(number, status[number], tuple(found))
            for number, found in entries.items()}


def _lot_versions(session: Session, numbers: set[str]) -> dict[str, list[RecordVersion]]:
    versions = defaultdict(list)
    if numbers:
        for version in session.scalars(
                select(RecordVersion).where(RecordVersion.record_type == LOTS.name,
                                            RecordVersion.record_id.in_(numbers))
                .order_by(RecordVersion.record_id, RecordVersion.version)):
            versions[version.record_id].append(version)
    return versions


def _as_of(versions: list[RecordVersion], moment: datetime) -> tuple[str | None, date | None]:
    """(status, expiry date) of the lot's last version stored at or before ``moment``."""
    in_force = [v for v in versions if v.changed_at <= moment]
    if not in_force:
        return None, None
    expires = json.loads(in_force[-1].content).get("expires_on")
    return in_force[-1].state, date.fromisoformat(expires) if expires else None


def site_day(moment: datetime) -> date:
    """The site's calendar day (config app.timezone) at a UTC moment."""
    if not has_app_context():
        return moment.date()
    return moment.astimezone(ZoneInfo(current_app.config["APP_TIMEZONE"])).date()


def _lot_ids(session: Session, numbers: set[str]) -> dict[str, int]:
    if not numbers:
        return {}
    return dict(session.execute(select(Lot.number, Lot.id).where(Lot.number.in_(numbers))).all())


def _deviations(session: Session, lots: dict[str, int]) -> list[DeviationFact]:
    """Every deviation naming one of ``lots`` (number -> id), by number, with the lots it
    names among them (not those removed as named by mistake) and its CAPAs that are not
    cancelled."""
    number_of = {lot_id: number for number, lot_id in lots.items()}
    links = session.execute(select(DeviationLot.deviation_id, DeviationLot.lot_id).where(
        DeviationLot.lot_id.in_(list(number_of)), named_now())).all()
    names = defaultdict(list)
    for deviation_id, lot_id in links:
        names[deviation_id].append(number_of[lot_id])
    found = session.scalars(select(Deviation).where(Deviation.id.in_(list(names)))
                            .order_by(Deviation.number)) if names else []
    return [DeviationFact(d.number, d.state, tuple(sorted(names[d.id])), d.capa_required,
                          tuple(c.number for c in linked_capas(session, d)
                                if c.state != CANCELLED)) for d in found]


def _reviews(session: Session, batch: Batch) -> tuple[ReviewFact, ...]:
    """The *reviewed* signatures of the batch, oldest first; ``current`` when one signed
    the batch record's current content and verifies."""
    current_hash = current_content_hash(batch)
    reviews = [s for s in signatures_of(session, batch.record_type, batch.number)
               if s.meaning == REVIEWED]
    return tuple(ReviewFact(s.signer, s.name, s.at, s.record_version,
                            s.content_hash == current_hash
                            and verify_stored_signature(session, s)) for s in reviews)
