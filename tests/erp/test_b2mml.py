"""B2MML SyncMaterialLot messages from ERP events: every message validates against MESA's
B2MML V0701 schemas shipped beside this file (tests/erp/b2mml, only the files
B2MML-Material.xsd pulls in, with MESA's LICENSE), and every event field can be read back
where docs/erp-b2mml.md says it is."""
from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from qms.erp.b2mml import sync_material_lot

SCHEMAS = Path(__file__).parent / "b2mml"
MAPPING_DOC = Path(__file__).parents[2] / "docs" / "erp-b2mml.md"
B2MML = "http://www.mesa.org/xml/B2MML"
XSD = "http://www.w3.org/2001/XMLSchema"
NS = {"b": B2MML}
LOT = "/b:SyncMaterialLot/b:DataArea/b:MaterialLot"
STATUSES = ("quarantine", "released", "rejected", "on_hold", "expired")
NULLABLE = ("batch", "previous_status", "usage_decision", "expires_on", "inspection", "reason")


@cache
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / "B2MML-Material.xsd")))


def event(**changes) -> dict:
    base = {
        "event_id": "9a0c7c1e-4b7f-4a57-9d7e-0c2f2b0e8a11", "type": "batch.released",
        "schema_version": 1, "occurred_at": "2026-12-07T14:00:00.123456Z", "sequence": 42,
        "lot": "B202612-L1-0001", "batch": "B202612-L1-0001", "material": "FG-TAB",
        "material_name": "Tablets 10 mg", "status": "released",
        "previous_status": "quarantine", "disposition": "Unrestricted", "usage_decision": "A",
        "quantity": "100.5", "unit": "kg", "expires_on": "2027-12-31", "inspection": None,
        "decided_by": {"username": "anna.approver", "name": "Anna Approver",
                       "signature_id": 12, "meaning": "released"},
        "reason": None}
    return {**base, **changes}


def valid_document(message: bytes) -> etree._Element:
    document = etree.fromstring(message)
    assert schema().validate(document), schema().error_log
    return document


def one(document: etree._Element, path: str) -> str:
    found = document.xpath(path, namespaces=NS)
    assert len(found) == 1, (path, found)
    return found[0]


def text(document: etree._Element, path: str) -> str:
    """The text of the one element at ``path`` ("" when it is empty)."""
    element = one(document, path)
    return element.text or ""


def properties(document: etree._Element) -> dict[str, tuple[str, str]]:
    """MaterialLotProperty ID -> (ValueString, DataType), IDs checked unique."""
    entries = document.xpath(f"{LOT}/b:MaterialLotProperty", namespaces=NS)
    found = {text(entry, "b:ID"): (text(entry, "b:Value/b:ValueString"),
                                   text(entry, "b:Value/b:DataType"))
             for entry in entries}
    assert len(found) == len(entries)
    return found


EVENTS = {
    "batch.released": event(),
    "batch.rejected": event(
        type="batch.rejected", status="rejected", disposition="Restricted",
        usage_decision="R", expires_on=None, reason="Assay out of specification",
        decided_by={"username": "anna.approver", "name": "Anna Approver",
                    "signature_id": 13, "meaning": "rejected"}),
    "lot.status_changed": event(
        type="lot.status_changed", lot="RM-API-260307-001", batch=None, material="RM-API",
        material_name="Paracetamol API", status="on_hold", previous_status="released",
        disposition="Restricted", usage_decision=None, quantity="25", unit="kg",
        reason="DEV-2026-00003 names the lot",
        decided_by={"username": "peter.production", "name": "Peter Production",
                    "signature_id": None, "meaning": None}),
    "inspection.decided": event(
        type="inspection.decided", lot="RM-EXC-260307-002", batch=None, material="RM-EXC",
        material_name="Lactose", previous_status="quarantine", inspection="INS-2026-00001",
        quantity="500.000", unit="g",
        decided_by={"username": "quinn.qa", "name": "Quinn QA", "signature_id": 7,
                    "meaning": "approved"}),
}


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_every_event_type_gives_a_valid_sync_material_lot(event_type):
    message = sync_material_lot(EVENTS[event_type])
    assert message.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    document = valid_document(message)
    assert document.tag == f"{{{B2MML}}}SyncMaterialLot"
    assert properties(document)["type"] == (event_type, "string")


def test_the_mapped_values_are_where_the_mapping_says():
    document = valid_document(sync_material_lot(event(reason="Meets specification")))
    assert one(document, "/b:SyncMaterialLot/@releaseID") == "0701"
    assert one(document, "/b:SyncMaterialLot/@versionID") == "1"
    area = "/b:SyncMaterialLot/b:ApplicationArea"
    assert one(document, f"{area}/b:BODID/text()") == "9a0c7c1e-4b7f-4a57-9d7e-0c2f2b0e8a11"
    assert one(document, f"{area}/b:CreationDateTime/text()") == "2026-12-07T14:00:00.123456Z"
    action = "/b:SyncMaterialLot/b:DataArea/b:Sync/b:ActionCriteria/b:ActionExpression"
    assert one(document, f"{action}/@actionCode") == "Change"
    assert one(document, f"{action}/text()") == "/SyncMaterialLot/DataArea/MaterialLot"
    assert one(document, f"{LOT}/b:ID/text()") == "B202612-L1-0001"
    assert one(document, f"{LOT}/b:Description/text()") == "Tablets 10 mg"
    assert one(document, f"{LOT}/b:MaterialDefinitionID/text()") == "FG-TAB"
    assert one(document, f"{LOT}/b:Status/text()") == "released"
    assert one(document, f"{LOT}/b:Disposition/text()") == "UnRestricted"
    assert one(document, f"{LOT}/b:Quantity/b:QuantityString/text()") == "100.5"
    assert one(document, f"{LOT}/b:Quantity/b:DataType/text()") == "decimal"
    assert one(document, f"{LOT}/b:Quantity/b:UnitOfMeasure/text()") == "kg"
    assert properties(document) == {
        "type": ("batch.released", "string"), "sequence": ("42", "integer"),
        "batch": ("B202612-L1-0001", "string"), "status": ("released", "string"),
        "previous_status": ("quarantine", "string"), "usage_decision": ("A", "string"),
        "expires_on": ("2027-12-31", "date"), "decided_by.username": ("anna.approver", "string"),
        "decided_by.name": ("Anna Approver", "string"),
        "decided_by.signature_id": ("12", "integer"),
        "decided_by.meaning": ("released", "string"),
        "reason": ("Meets specification", "string")}


def test_a_restricted_lot_keeps_b2mml_spelling_and_an_unknown_disposition_is_refused():
    restricted = sync_material_lot(EVENTS["batch.rejected"])
    assert one(valid_document(restricted), f"{LOT}/b:Disposition/text()") == "Restricted"
    with pytest.raises(ValueError, match="disposition 'Blocked'"):
        sync_material_lot(event(disposition="Blocked"))


def test_null_fields_leave_their_properties_out():
    nulls = dict.fromkeys(NULLABLE) | {"decided_by": {
        "username": "system", "name": "system", "signature_id": None, "meaning": None}}
    document = valid_document(sync_material_lot(event(**nulls)))
    assert set(properties(document)) == {"type", "sequence", "status", "decided_by.username",
                                         "decided_by.name"}
    without_decider = valid_document(sync_material_lot(event(**nulls | {"decided_by": None})))
    assert set(properties(without_decider)) == {"type", "sequence", "status"}


def test_non_ascii_text_is_written_as_utf8_and_reads_back():
    name = "对乙酰氨基酚片 500 mg"
    reason = "Freigabe nach Prüfung; 合格\r\nsecond line <&>"
    message = sync_material_lot(event(material_name=name, unit="µg", reason=reason))
    assert name.encode("utf-8") in message  # the characters themselves, not &#...; escapes
    document = valid_document(message)
    assert one(document, f"{LOT}/b:Description/text()") == name
    assert one(document, f"{LOT}/b:Quantity/b:UnitOfMeasure/text()") == "µg"
    assert properties(document)["reason"] == (reason, "string")  # \r survives parsing


def test_the_documented_example_is_what_the_code_writes():
    blocks = dict(re.findall(r"^```(json|xml)\n(.*?)^```$",
                             MAPPING_DOC.read_text(encoding="utf-8"), re.M | re.S))
    message = sync_material_lot(json.loads(blocks["json"]))
    assert message.decode("utf-8") == blocks["xml"]
    valid_document(message)


def test_the_same_event_gives_the_same_bytes():
    assert sync_material_lot(event()) == sync_material_lot(event())
    assert sync_material_lot(event()) != sync_material_lot(event(sequence=43))


@pytest.mark.parametrize("bad, error", [
    ({"schema_version": 2}, ValueError),
    ({"reason": "bell \x07"}, ValueError),  # XML 1.0 cannot carry it
    ({"quantity": 100.5}, TypeError),  # decimals travel as strings, never floats
    ({"sequence": True}, TypeError),
])
def test_events_outside_the_contract_are_refused(bad, error):
    with pytest.raises(error):
        sync_material_lot(event(**bad))


def test_a_missing_required_field_is_refused():
    broken = event()
    del broken["lot"]
    with pytest.raises(KeyError, match="lot"):
        sync_material_lot(broken)


def _remove(path):
    def mutate(document):
        element = one(document, path)
        element.getparent().remove(element)
    return mutate


def _set_text(path, text):
    def mutate(document):
        one(document, path).text = text
    return mutate


def _quantity_first(document):
    lot = one(document, LOT)
    lot.insert(0, one(document, f"{LOT}/b:Quantity"))


def _drop_release_id(document):
    del document.attrib["releaseID"]


@pytest.mark.parametrize("mutate", [
    _remove(f"{LOT}/b:ID"),
    _remove("/b:SyncMaterialLot/b:ApplicationArea/b:CreationDateTime"),
    _remove(f"{LOT}/b:Quantity/b:QuantityString"),
    _remove(f"{LOT}/b:MaterialLotProperty[1]/b:Value/b:ValueString"),
    _set_text(f"{LOT}/b:Disposition", "Unrestricted"),  # the event's spelling, not B2MML's
    _set_text(f"{LOT}/b:MaterialLotProperty[1]/b:Value/b:DataType", "text"),
    _set_text("/b:SyncMaterialLot/b:ApplicationArea/b:CreationDateTime", "2026-12-07 14:00"),
    _quantity_first,
    _drop_release_id,
], ids=["no lot ID", "no CreationDateTime", "no QuantityString", "no ValueString",
        "Unrestricted", "unknown DataType", "bad dateTime", "wrong order", "no releaseID"])
def test_the_schema_refuses_a_broken_message(mutate):
    document = valid_document(sync_material_lot(event()))
    mutate(document)
    assert not schema().validate(document)


def test_the_shipped_schemas_are_what_b2mml_material_needs_with_mesas_licence():
    needed, pending = set(), ["B2MML-Material.xsd"]
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            tree = etree.parse(str(SCHEMAS / name))
            pending += tree.xpath("/xsd:schema/xsd:include/@schemaLocation"
                                  " | /xsd:schema/xsd:import/@schemaLocation",
                                  namespaces={"xsd": XSD})
    assert {path.name for path in SCHEMAS.glob("*.xsd")} == needed
    licence = " ".join((SCHEMAS / "LICENSE").read_text(encoding="utf-8").split())
    assert licence.startswith("Copyright 2020 MESA International")
    assert ('"The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA '
            'International."') in licence


# --- every valid event: the message validates and each field reads back ---------------------

def _xml_text(**kwargs):
    """Text XML 1.0 can carry: no surrogates, no controls but tab, LF and CR."""
    chars = st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff")
    return st.text(chars | st.sampled_from("\t\n\r"), **kwargs)


_numbers = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-",
                   min_size=1, max_size=40)


@st.composite
def valid_events(draw) -> dict:
    status = draw(st.sampled_from(STATUSES))
    occurred = draw(st.datetimes())
    return {
        "event_id": str(draw(st.uuids(version=4))),
        "type": draw(st.sampled_from(["batch.released", "batch.rejected",
                                      "lot.status_changed", "inspection.decided"])),
        "schema_version": 1,
        "occurred_at": occurred.isoformat(timespec="microseconds") + "Z",
        "sequence": draw(st.integers(1, 2**53)),
        "lot": draw(_numbers), "batch": draw(st.none() | _numbers),
        "material": draw(_numbers), "material_name": draw(_xml_text(max_size=200)),
        "status": status, "previous_status": draw(st.none() | st.sampled_from(STATUSES)),
        "disposition": "Unrestricted" if status == "released" else "Restricted",
        "usage_decision": draw(st.sampled_from(["A", "R", None])),
        "quantity": str(draw(st.decimals(0, 10**12, places=3))),
        "unit": draw(st.sampled_from(["kg", "g", "L", "pcs", "µg"])),
        "expires_on": draw(st.none() | st.dates().map(lambda day: day.isoformat())),
        "inspection": draw(st.none() | st.from_regex(r"INS-20[0-9]{2}-[0-9]{5}",
                                                     fullmatch=True)),
        "decided_by": {"username": draw(_numbers), "name": draw(_xml_text(max_size=80)),
                       "signature_id": draw(st.none() | st.integers(1, 2**31)),
                       "meaning": draw(st.sampled_from([None, "approved", "released",
                                                        "rejected"]))},
        "reason": draw(st.none() | _xml_text(max_size=300)),
    }


def _read_back(document: etree._Element) -> dict:
    """The event as far as the message carries it, read with XPath only."""
    values = {name: value for name, (value, _) in properties(document).items()}
    decided_by = {key.split(".", 1)[1]: values.pop(key)
                  for key in list(values) if key.startswith("decided_by.")}
    area = "/b:SyncMaterialLot/b:ApplicationArea"
    return {**values, "decided_by": decided_by,
            "event_id": one(document, f"{area}/b:BODID/text()"),
            "occurred_at": one(document, f"{area}/b:CreationDateTime/text()"),
            "lot": one(document, f"{LOT}/b:ID/text()"),
            "material": one(document, f"{LOT}/b:MaterialDefinitionID/text()"),
            "material_name": text(document, f"{LOT}/b:Description"),
            "disposition": one(document, f"{LOT}/b:Disposition/text()"),
            "quantity": one(document, f"{LOT}/b:Quantity/b:QuantityString/text()"),
            "unit": one(document, f"{LOT}/b:Quantity/b:UnitOfMeasure/text()")}


def _as_carried(sent: dict) -> dict:
    """The event's non-null values as text, with B2MML's spelling of the disposition."""
    carried = {key: str(value) for key, value in sent.items()
               if value is not None and key not in ("decided_by", "schema_version")}
    carried["decided_by"] = {key: str(value) for key, value in sent["decided_by"].items()
                             if value is not None}
    carried["disposition"] = {"Unrestricted": "UnRestricted"}.get(sent["disposition"],
                                                                  sent["disposition"])
    return carried


@settings(deadline=None)  # a busy CI machine must not turn slowness into failures
@given(valid_events())
def test_every_valid_event_validates_and_reads_back(sent):
    document = valid_document(sync_material_lot(sent))
    assert _read_back(document) == _as_carried(sent)
    assert one(document, f"{LOT}/b:Status/text()") == sent["status"]
