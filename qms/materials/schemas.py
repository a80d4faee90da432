"""Request and response schemas of materials, suppliers, lots and batches."""
from __future__ import annotations

from marshmallow import fields

from qms.api.spec import DecimalString
from qms.materials.models import LotOrigin, LotStatus, MaterialKind
from qms.records.api import RecordOut


class MaterialOut(RecordOut):
    code = fields.Function(lambda record: record.number, metadata={"type": "string"})
    name = fields.String()
    kind = fields.String(metadata={"enum": [k.value for k in MaterialKind]})
    unit = fields.String()
    shelf_life_days = fields.Integer(allow_none=True)
    description = fields.String()


class SupplierOut(RecordOut):
    code = fields.Function(lambda record: record.number, metadata={"type": "string"})
    name = fields.String()
    address = fields.String()
    contact = fields.String()


class LotOut(RecordOut):
    status = fields.Function(lambda lot: lot.state, metadata={
        "type": "string", "enum": [s.value for s in LotStatus]})
    material = fields.Function(lambda lot: lot.material.number)
    origin = fields.String(metadata={"enum": [o.value for o in LotOrigin]})
    supplier = fields.Function(lambda lot: lot.supplier.number if lot.supplier else None,
                               allow_none=True)
    supplier_lot = fields.String(allow_none=True)
    quantity = DecimalString()
    unit = fields.String()
    received_on = fields.Date(allow_none=True)
    expires_on = fields.Date(allow_none=True)


class BatchOut(RecordOut):
    material = fields.Function(lambda batch: batch.material.number)
    line = fields.String()
    quantity = DecimalString()
    unit = fields.String()
    produced_on = fields.Date(allow_none=True)
    status = fields.Function(lambda batch: batch.lot.state,
                             metadata={"description": "the status of the lot it produced"})
    expires_on = fields.Function(lambda batch: batch.lot.expires_on)
