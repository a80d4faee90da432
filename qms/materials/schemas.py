"""Request and response schemas of materials, suppliers, lots, batches and the trace."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from qms.api.spec import DecimalString, SafeInteger
from qms.materials.models import UNITS, LotOrigin, LotStatus, MaterialKind
from qms.materials.service import CODE, CODE_RULE
from qms.materials.trace import Direction
from qms.records.api import RecordOut

KINDS = [k.value for k in MaterialKind]
STATUSES = [s.value for s in LotStatus]
ORIGINS = [o.value for o in LotOrigin]
LINE_RULE = "1 to 20 of A-Z, a-z, 0-9, '.', '_', '-' (it becomes part of the batch number)"


def _code(**options) -> fields.String:
    metadata = {"pattern": CODE.pattern, **options.pop("metadata", {})}
    return fields.String(validate=validate.Regexp(CODE, error=CODE_RULE), metadata=metadata,
                         **options)


def _name(**options) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=200), **options)


def _text(limit: int, **options) -> fields.String:
    return fields.String(validate=validate.Length(max=limit), **options)


def _line(**options) -> fields.String:
    return fields.String(validate=validate.Regexp(r"^[A-Za-z0-9._-]{1,20}$", error=LINE_RULE),
                         **options)


def _unit(**options) -> fields.String:
    metadata = {"enum": list(UNITS), **options.pop("metadata", {})}
    return fields.String(validate=validate.OneOf(UNITS), metadata=metadata, **options)


def _page(schema: dict) -> dict:
    return {**schema, "limit": SafeInteger(load_default=100, min=1, max=1000),
            "offset": SafeInteger(load_default=0, min=0)}


# ---- materials -------------------------------------------------------------------------

class MaterialOut(RecordOut):
    code = fields.Function(lambda record: record.number, metadata={"type": "string"})
    name = fields.String()
    kind = fields.String(metadata={"enum": KINDS})
    unit = fields.String(metadata={"enum": list(UNITS)})
    shelf_life_days = fields.Integer(allow_none=True)
    description = fields.String()


class MaterialCreate(Schema):
    code = _code(required=True)
    name = _name(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    unit = _unit(required=True)
    shelf_life_days = SafeInteger(load_default=None, allow_none=True, min=1, max=36500)
    description = _text(20000, load_default="")


class MaterialChanges(Schema):
    """Only the fields to change; kind and unit are fixed once lots exist in that unit."""
    name = _name()
    shelf_life_days = SafeInteger(allow_none=True, min=1, max=36500)
    description = _text(20000)


MaterialQuery = Schema.from_dict(_page({
    "state": fields.String(validate=validate.OneOf(["active", "inactive"])),
    "kind": fields.String(validate=validate.OneOf(KINDS))}), name="MaterialQuery")


# ---- suppliers -------------------------------------------------------------------------

class SupplierOut(RecordOut):
    code = fields.Function(lambda record: record.number, metadata={"type": "string"})
    name = fields.String()
    address = fields.String()
    contact = fields.String()


class SupplierCreate(Schema):
    code = _code(required=True)
    name = _name(required=True)
    address = _text(2000, load_default="")
    contact = _text(200, load_default="")


class SupplierChanges(Schema):
    name = _name()
    address = _text(2000)
    contact = _text(200)


SupplierQuery = Schema.from_dict(_page({
    "state": fields.String(validate=validate.OneOf(
        ["pending", "approved", "conditional", "blocked"]))}), name="SupplierQuery")


# ---- lots ------------------------------------------------------------------------------

class LotOut(RecordOut):
    status = fields.Function(lambda lot: lot.state, metadata={
        "type": "string", "enum": STATUSES, "description": "the lot status (= state)"})
    material = fields.Function(lambda lot: lot.material.number, metadata={"type": "string"})
    origin = fields.String(metadata={"enum": ORIGINS})
    supplier = fields.Function(lambda lot: lot.supplier.number if lot.supplier else None,
                               allow_none=True, metadata={"type": "string"})
    supplier_lot = fields.String(allow_none=True)
    quantity = DecimalString()
    unit = fields.String()
    received_on = fields.Date(allow_none=True)
    expires_on = fields.Date(allow_none=True)
    status_before_hold = fields.String(allow_none=True, metadata={
        "description": "while on hold: the status the lot returns to"})


class LotReceive(Schema):
    material = _code(required=True, metadata={"description": "material code"})
    supplier = _code(required=True, metadata={"description": "supplier code"})
    quantity = DecimalString(required=True, positive=True)
    unit = _unit(required=True, metadata={"description": "must be the material's unit"})
    supplier_lot = _text(80, load_default=None, allow_none=True)
    received_on = fields.Date(load_default=None, allow_none=True,
                              metadata={"description": "default: today"})
    expires_on = fields.Date(load_default=None, allow_none=True, metadata={
        "description": "default: received_on + the material's shelf life"})


class LotChanges(Schema):
    """Correct a received lot's data in quarantine (reason required); a produced lot is
    corrected on its batch (409 naming the batch)."""
    supplier_lot = _text(80, allow_none=True)
    expires_on = fields.Date()


LotQuery = Schema.from_dict(_page({
    "status": fields.String(validate=validate.OneOf(STATUSES)),
    "material": _code(), "supplier": _code(),
    "origin": fields.String(validate=validate.OneOf(ORIGINS))}), name="LotQuery")


# ---- batches ---------------------------------------------------------------------------

class BatchInputOut(Schema):
    lot = fields.String()
    quantity = fields.String(metadata={"pattern": DecimalString.PATTERN.pattern})
    unit = fields.String()


class BatchOut(RecordOut):
    material = fields.Function(lambda batch: batch.material.number,
                               metadata={"type": "string"})
    line = fields.String()
    quantity = DecimalString()
    unit = fields.String()
    produced_on = fields.Date(allow_none=True)
    status = fields.Function(lambda batch: batch.lot.state, metadata={
        "type": "string", "enum": STATUSES, "description": "the status of the lot it produced"})
    expires_on = fields.Function(lambda batch: batch.lot.expires_on.isoformat()
                                 if batch.lot.expires_on else None,
                                 metadata={"type": "string", "format": "date"})
    inputs = fields.List(fields.Nested(BatchInputOut), metadata={
        "description": "consumed lots, in lot number order"})


class BatchInput(Schema):
    lot_number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    quantity = DecimalString(required=True, positive=True)
    unit = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=20),
                         metadata={"description": "optional; must be the lot's unit"})


def _inputs(*, minimum: int = 0, **options) -> fields.List:
    return fields.List(fields.Nested(BatchInput), validate=validate.Length(min=minimum, max=500),
                       **options)


class BatchCreate(Schema):
    material = _code(required=True, metadata={"description": "an intermediate or finished "
                                                             "material's code"})
    line = _line(required=True)
    quantity = DecimalString(required=True, positive=True)
    unit = _unit(required=True, metadata={"description": "must be the material's unit"})
    produced_on = fields.Date(load_default=None, allow_none=True,
                              metadata={"description": "default: today"})
    expires_on = fields.Date(load_default=None, allow_none=True, metadata={
        "description": "default: produced_on + the material's shelf life"})
    inputs = _inputs(load_default=list)


class BatchInputsRequest(Schema):
    inputs = _inputs(required=True, minimum=1)
    reason = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=2000))


class BatchInputReversal(Schema):
    lot_number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    quantity = DecimalString(required=True, positive=True, metadata={
        "description": "how much of the consumption to reverse (at most what was consumed)"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class BatchChanges(Schema):
    """Correct the batch record in production or produced (reason required), including its
    output lot's expiry date, which is never before the production date."""
    line = _line()
    produced_on = fields.Date()
    expires_on = fields.Date(metadata={"description": "the output lot's expiry date; the "
                                                      "lot gets a new version too"})


# the batch workflow's states (config/workflows.toml; a test keeps the two in step)
BATCH_STATES = ["in_production", "produced", "pending_release", "released", "rejected",
                "on_hold", "cancelled"]
BatchQuery = Schema.from_dict(_page({
    "state": fields.String(validate=validate.OneOf(BATCH_STATES)),
    "status": fields.String(validate=validate.OneOf(STATUSES)),
    "material": _code(), "line": _line()}), name="BatchQuery")


# ---- trace -----------------------------------------------------------------------------

class TraceQuery(Schema):
    direction = fields.String(required=True, validate=validate.OneOf(
        [d.value for d in Direction]), metadata={
        "description": "backward: what went into the lot; forward: where it went"})


class TraceNode(Schema):
    number = fields.String()
    material = fields.String()
    material_name = fields.String()
    kind = fields.String(metadata={"enum": KINDS})
    supplier = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": STATUSES})
    origin = fields.String(metadata={"enum": ORIGINS})
    quantity = DecimalString()
    unit = fields.String()
    expires_on = fields.String(allow_none=True, metadata={"format": "date"})
    depth = fields.Integer(metadata={"description": "shortest distance from the root"})


class TraceEdge(Schema):
    from_ = fields.String(attribute="from", data_key="from",
                          metadata={"description": "the consumed lot"})
    to = fields.String(metadata={"description": "the lot made from it"})
    quantity = DecimalString()
    unit = fields.String()


class TraceCounts(Schema):
    lots = fields.Integer()
    edges = fields.Integer()
    max_depth = fields.Integer()
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer())


class TraceOut(Schema):
    root = fields.String()
    direction = fields.String(metadata={"enum": [d.value for d in Direction]})
    nodes = fields.List(fields.Nested(TraceNode))
    edges = fields.List(fields.Nested(TraceEdge))
    counts = fields.Nested(TraceCounts)
