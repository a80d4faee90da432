"""Supplier scorecard: how a supplier's received lots fared in incoming inspection over a
period.

- accepted / rejected: usage decisions taken in the period (by the date of the decision's
  version, a UTC calendar day, both ends included);
- open: incoming inspections of the supplier's lots opened in the period that await their
  usage decision now (cancelled inspections count nowhere);
- acceptance_rate: accepted / (accepted + rejected) to four decimal places, as a string
  ("0.7500"), or null without decisions.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qms.inspection.models import INSPECTIONS, UNDECIDED_STATES, Inspection, Stage
from qms.materials.models import Lot, Supplier
from qms.records.models import RecordVersion

DECISIONS = {"accept": "accepted", "reject": "rejected"}
RATE_PLACES = Decimal("0.0001")


def supplier_scorecard(session: Session, supplier: Supplier, start: date,
                       end: date) -> dict[str, Any]:
    """Counts of the supplier's incoming inspections decided or opened in [start, end]."""
    since, until = _utc_midnight(start), _utc_midnight(end + timedelta(days=1))
    incoming = (select(Inspection.id).join(Lot, Lot.id == Inspection.lot_id)
                .where(Lot.supplier_id == supplier.id,
                       Inspection.stage == Stage.INCOMING.value))
    decided = dict(session.execute(
        select(RecordVersion.action, func.count())
        .join(Inspection, Inspection.number == RecordVersion.record_id)
        .where(RecordVersion.record_type == INSPECTIONS.name,
               RecordVersion.action.in_(DECISIONS), Inspection.id.in_(incoming),
               RecordVersion.changed_at >= since, RecordVersion.changed_at < until)
        .group_by(RecordVersion.action)).all())
    still_open = session.scalar(select(func.count()).select_from(Inspection).where(
        Inspection.id.in_(incoming), Inspection.state.in_(UNDECIDED_STATES),
        Inspection.created_at >= since, Inspection.created_at < until))
    accepted, rejected = decided.get("accept", 0), decided.get("reject", 0)
    return {"supplier": supplier.number, "name": supplier.name, "from": start, "to": end,
            "accepted": accepted, "rejected": rejected, "open": still_open,
            "decided": accepted + rejected, "acceptance_rate": _rate(accepted, rejected)}


def _rate(accepted: int, rejected: int) -> str | None:
    if accepted + rejected == 0:
        return None
    rate = (Decimal(accepted) / Decimal(accepted + rejected)).quantize(RATE_PLACES,
                                                                       ROUND_HALF_EVEN)
    return format(rate, "f")


def _utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)
