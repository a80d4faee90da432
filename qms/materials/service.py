"""Materials, suppliers and received lots: creation through the generic record path, and
look-ups. Batches and consumption are in qms.materials.batches, status changes that follow
from other records in qms.materials.holds. Every function flushes, never commits.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qms.errors import Conflict, InvalidInput
from qms.dates import today
from qms.identity.models import User
from qms.materials.hooks import lot_received
from qms.materials.models import (LOTS, MATERIALS, SUPPLIERS, Lot, LotOrigin, Material,
                                  MaterialKind, Supplier)
from qms.materials.numbering import NumberingRules, next_number
from qms.records.service import create_record, find_named, update_record
from qms.records.workflow import Workflow, WorkflowRegistry

# material and supplier codes: they become URL path segments and parts of lot numbers
CODE = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,39}$")
CODE_RULE = "1 to 40 of A-Z, 0-9, '.', '_', '-', starting with a letter or digit"
RECEIVABLE_FROM = ("approved", "conditional")
# finished goods are made here (a batch), never received
RECEIVABLE_KINDS = (MaterialKind.RAW.value, MaterialKind.PACKAGING.value,
                    MaterialKind.INTERMEDIATE.value)


def create_material(session: Session, workflows: WorkflowRegistry, actor: User,
                    fields: Mapping[str, Any]) -> Material:
    """A new active material, numbered by its code (409 when the code is taken)."""
    values = dict(fields)
    code = _code(values.pop("code", None), "code")
    return create_record(session, workflows.get(MATERIALS.name), actor, values, number=code)


def create_supplier(session: Session, workflows: WorkflowRegistry, actor: User,
                    fields: Mapping[str, Any]) -> Supplier:
    """A new supplier, numbered by its code, pending until QA approves it."""
    values = dict(fields)
    code = _code(values.pop("code", None), "code")
    return create_record(session, workflows.get(SUPPLIERS.name), actor, values, number=code)


def _code(value: Any, field: str) -> str:
    if not isinstance(value, str) or not CODE.match(value):
        raise InvalidInput(f"{field} must be {CODE_RULE}", field=field)
    return value


def material_by_code(session: Session, code: str, *, field: str = "material") -> Material:
    """The material, locked against a concurrent deactivation (PostgreSQL); 422 naming
    ``field`` when there is none: an unknown code in a request is bad input."""
    return find_named(session, MATERIALS, code, field=field, for_update=True)


def supplier_by_code(session: Session, code: str, *, field: str = "supplier") -> Supplier:
    return find_named(session, SUPPLIERS, code, field=field, for_update=True)


def require_active(material: Material) -> None:
    if material.state != "active":
        raise Conflict(f"material {material.number} is {material.state}",
                       extra={"material": material.number, "state": material.state})


def require_unit(material: Material, unit: str, field: str = "unit") -> None:
    """Quantities are in the material's unit; nothing is converted."""
    if unit != material.unit:
        raise InvalidInput(f"{material.number} is counted in {material.unit}, not {unit!r} "
                           "(units are not converted)", field=field)


def expiry(material: Material, start: date, given: date | None, field: str = "expires_on"
           ) -> date:
    """The given expiry date, or ``start`` plus the material's shelf life; one of them is
    needed, and expiry cannot come before ``start``."""
    if given is None:
        if material.shelf_life_days is None:
            raise InvalidInput(f"{material.number} has no shelf life: give expires_on",
                               field=field)
        given = start + timedelta(days=material.shelf_life_days)
    if given < start:
        raise InvalidInput(f"expires_on {given.isoformat()} is before {start.isoformat()}",
                           field=field)
    return given


def require_in_date(expires_on: date, current: date, field: str = "expires_on") -> None:
    """A new lot must not be expired already."""
    if expires_on < current:
        raise InvalidInput(f"the lot would already be expired ({expires_on.isoformat()})",
                           field=field)


def receive_lot(session: Session, workflows: WorkflowRegistry, numbering: NumberingRules,
                actor: User, fields: Mapping[str, Any], *, on: date | None = None) -> Lot:
    """Receive a lot of a material from a supplier, in quarantine, numbered by the lot rule
    of config/numbering.toml, then run the on_lot_received callbacks (an incoming inspection
    opens). Refuses unknown codes (422), an inactive or finished material, a supplier that
    is not approved or conditional (409), another unit than the material's, a receipt date
    in the future, and a missing expiry date when the material has no shelf life (422)."""
    current = on or today()
    material = material_by_code(session, fields["material"])
    supplier = supplier_by_code(session, fields["supplier"])
    _check_receivable(material, supplier)
    require_unit(material, fields["unit"])
    received_on = fields.get("received_on") or current
    if received_on > current:
        raise InvalidInput("received_on cannot be in the future", field="received_on")
    expires_on = expiry(material, received_on, fields.get("expires_on"))
    require_in_date(expires_on, current)
    number = next_number(session, numbering.lot, {"material": material.number,
                                                  "supplier": supplier.number},
                         received_on, taken=lambda n: lot_exists(session, n))
    lot = create_record(session, workflows.get(LOTS.name), actor, {
        "material": material, "supplier": supplier, "origin": LotOrigin.RECEIVED.value,
        "supplier_lot": fields.get("supplier_lot"), "quantity": fields["quantity"],
        "unit": fields["unit"], "received_on": received_on, "expires_on": expires_on},
        number=number)
    lot_received(session, lot, actor)
    return lot


def correct_lot(session: Session, workflow: Workflow, lot: Lot, actor: User,
                changes: Mapping[str, Any], reason: str | None, *,
                expected_version: int | None = None) -> Lot:
    """Correct a received lot's data in quarantine (update_record's rules). A produced lot's
    data belongs to its batch record: refused with 409 naming the batch, nothing written;
    it is corrected on the batch (edit_batch), so that the change is a batch version by an
    author of the batch. Flushes, never commits."""
    if lot.origin == LotOrigin.PRODUCED.value:
        raise Conflict(f"lot {lot.number} is the output of batch {lot.number}: correct it on "
                       f"the batch (PATCH /api/v1/batches/{lot.number})",
                       extra={"batch": lot.number})
    return update_record(session, workflow, lot, actor, changes, reason,
                         expected_version=expected_version)


def _check_receivable(material: Material, supplier: Supplier) -> None:
    require_active(material)
    if material.kind not in RECEIVABLE_KINDS:
        raise InvalidInput(f"{material.number} is a {material.kind} material: it is produced "
                           "in a batch, not received", field="material")
    if supplier.state not in RECEIVABLE_FROM:
        raise Conflict(f"supplier {supplier.number} is {supplier.state}; lots are received "
                       "only from approved or conditionally approved suppliers",
                       extra={"supplier": supplier.number, "state": supplier.state})


def lot_exists(session: Session, number: str) -> bool:
    return session.scalar(select(Lot.id).where(Lot.number == number)) is not None


def list_materials(session: Session, *, state: str | None = None, kind: str | None = None,
                   limit: int = 100, offset: int = 0) -> list[Material]:
    """Materials in code order, filtered by state and kind."""
    query = select(Material).order_by(Material.number).limit(limit).offset(offset)
    if state is not None:
        query = query.where(Material.state == state)
    if kind is not None:
        query = query.where(Material.kind == kind)
    return list(session.scalars(query))


def list_suppliers(session: Session, *, state: str | None = None, limit: int = 100,
                   offset: int = 0) -> list[Supplier]:
    """Suppliers in code order, filtered by approval status."""
    query = select(Supplier).order_by(Supplier.number).limit(limit).offset(offset)
    if state is not None:
        query = query.where(Supplier.state == state)
    return list(session.scalars(query))


def list_lots(session: Session, *, status: str | None = None, material: str | None = None,
              supplier: str | None = None, origin: str | None = None, limit: int = 100,
              offset: int = 0) -> list[Lot]:
    """Lots, newest first, filtered by status, material code, supplier code and origin."""
    query = select(Lot).order_by(Lot.id.desc()).limit(limit).offset(offset)
    if status is not None:
        query = query.where(Lot.state == status)
    if material is not None:
        query = query.where(Lot.material_id == select(Material.id).where(
            Material.number == material).scalar_subquery())
    if supplier is not None:
        query = query.where(Lot.supplier_id == select(Supplier.id).where(
            Supplier.number == supplier).scalar_subquery())
    if origin is not None:
        query = query.where(Lot.origin == origin)
    return list(session.scalars(query))
