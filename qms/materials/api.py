"""Materials, suppliers, lots and batches over HTTP; read, edit, transitions and history are
the generic record endpoints (qms.records.api)."""
from __future__ import annotations

from qms.materials.models import BATCHES, LOTS, MATERIALS, SUPPLIERS
from qms.materials.schemas import BatchOut, LotOut, MaterialOut, SupplierOut
from qms.records.api import record_routes

record_routes(MATERIALS, MaterialOut)
record_routes(SUPPLIERS, SupplierOut)
record_routes(LOTS, LotOut)
record_routes(BATCHES, BatchOut)
