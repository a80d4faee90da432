"""Response schema of the release check."""
from __future__ import annotations

from marshmallow import Schema, fields

from qms.release.gates import GATES


class GateOut(Schema):
    code = fields.String(metadata={"enum": list(GATES),
                                   "description": "stable gate code (docs/release-gates.md)"})
    passed = fields.Boolean()
    detail = fields.String(metadata={"description": "what passed, or what is missing or "
                                                    "wrong and what clears it"})


class ReleaseCheckOut(Schema):
    batch = fields.String()
    state = fields.String(metadata={"description": "the batch's state"})
    material_kind = fields.String(metadata={"description": "which gates apply depends on it "
                                                           "(config/release.toml)"})
    ready = fields.Boolean(metadata={"description": "every gate passed"})
    gates = fields.List(fields.Nested(GateOut), metadata={
        "description": "every gate that applies, in a fixed order"})
