"""ERP events as B2MML ``SyncMaterialLot`` messages (the file drop's XML, docs/erp-b2mml.md).

One event becomes one BOD that validates against the MESA B2MML V0701 schemas; the schemas
are not needed here, only in the tests. The same event always gives the same bytes, so a
re-delivered message is identical to the first (``CreationDateTime`` is the event's
``occurred_at``, not the time of writing).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree

NAMESPACE = "http://www.mesa.org/xml/B2MML"
RELEASE_ID = "0701"  # the B2MML release whose schemas the message follows
EVENT_VERSIONS = (1,)  # the ERP event versions this mapping knows
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
LOT_PATH = "/SyncMaterialLot/DataArea/MaterialLot"
# the event's ISA-95 disposition -> B2MML's spelling (Disposition1Type says "UnRestricted")
DISPOSITIONS = {"Restricted": "Restricted", "Unrestricted": "UnRestricted"}
QUANTITY_DATA_TYPE = "decimal"

# MaterialLotProperty entries in message order: property ID, where the value is in the
# event, B2MML DataType. The IDs are the event's field names (decided_by's fields dotted) and
# are part of the public mapping: receivers key on them.
PROPERTIES = (
    ("type", ("type",), "string"),
    ("sequence", ("sequence",), "integer"),
    ("batch", ("batch",), "string"),
    ("status", ("status",), "string"),
    ("previous_status", ("previous_status",), "string"),
    ("usage_decision", ("usage_decision",), "string"),
    ("expires_on", ("expires_on",), "date"),
    ("inspection", ("inspection",), "string"),
    ("decided_by.username", ("decided_by", "username"), "string"),
    ("decided_by.name", ("decided_by", "name"), "string"),
    ("decided_by.signature_id", ("decided_by", "signature_id"), "integer"),
    ("decided_by.meaning", ("decided_by", "meaning"), "string"),
    ("reason", ("reason",), "string"),
)


def sync_material_lot(event: Mapping[str, Any]) -> bytes:
    """The event as a ``SyncMaterialLot`` BOD: UTF-8 XML with its declaration, the same bytes
    for the same event. Null fields are left out. Raises KeyError for a missing required field,
    ValueError for an unknown event version or disposition or text XML cannot carry, TypeError
    for a value that is neither a string nor an integer (no floats)."""
    version = event.get("schema_version", 1)
    if version not in EVENT_VERSIONS:
        raise ValueError(f"ERP event version {version!r} has no B2MML mapping")
    root = etree.Element(_tag("SyncMaterialLot"), nsmap={None: NAMESPACE},
                         releaseID=RELEASE_ID, versionID=str(version))
    _application_area(root, event)
    data_area = _child(root, "DataArea")
    criteria = _child(_child(data_area, "Sync"), "ActionCriteria")
    # every event changes the lot's state; the message carries the whole lot so that a
    # receiver that has not seen it yet can create it
    _child(criteria, "ActionExpression", LOT_PATH).set("actionCode", "Change")
    _material_lot(data_area, event)
    return DECLARATION + etree.tostring(root, encoding="UTF-8", xml_declaration=False,
                                        pretty_print=True)


def _application_area(root: etree._Element, event: Mapping[str, Any]) -> None:
    area = _child(root, "ApplicationArea")
    _child(area, "CreationDateTime", event["occurred_at"])
    _child(area, "BODID", event["event_id"])


def _material_lot(data_area: etree._Element, event: Mapping[str, Any]) -> None:
    """MaterialLot's children in the schema's order: ID, Description, MaterialDefinitionID,
    Status, Disposition, MaterialLotProperty*, Quantity."""
    lot = _child(data_area, "MaterialLot")
    _child(lot, "ID", event["lot"])
    _child(lot, "Description", event["material_name"])
    _child(lot, "MaterialDefinitionID", event["material"])
    _child(lot, "Status", event["status"])
    _child(lot, "Disposition", _disposition(event["disposition"]))
    for property_id, path, data_type in PROPERTIES:
        value = _lookup(event, path)
        if value is not None:
            _property(lot, property_id, value, data_type)
    quantity = _child(lot, "Quantity")
    _child(quantity, "QuantityString", event["quantity"])
    _child(quantity, "DataType", QUANTITY_DATA_TYPE)
    _child(quantity, "UnitOfMeasure", event["unit"])


def _property(lot: etree._Element, property_id: str, value: Any, data_type: str) -> None:
    entry = _child(lot, "MaterialLotProperty")
    _child(entry, "ID", property_id)
    holder = _child(entry, "Value")
    _child(holder, "ValueString", value)
    _child(holder, "DataType", data_type)


def _disposition(value: str) -> str:
    try:
        return DISPOSITIONS[value]
    except KeyError:
        raise ValueError(f"disposition {value!r} is neither Restricted nor Unrestricted") \
            from None


def _lookup(event: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path``, or None when it or anything on the way is null or absent."""
    value: Any = event
    for key in path:
        if value is None:
            return None
        value = value.get(key)
    return value


def _child(parent: etree._Element, name: str, text: Any = None) -> etree._Element:
    element = etree.SubElement(parent, _tag(name))
    if text is not None:
        element.text = _text(text)  # lxml refuses control characters with ValueError
    return element


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"{type(value).__name__} value {value!r} in an ERP event; "
                    "expected a string or an integer")


def _tag(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"
