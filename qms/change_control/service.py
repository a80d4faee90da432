"""Change controls: raising them, their impacted items, implementation and effectiveness
verification records, and the look-ups other modules use. Every write goes through the
record core (create_record, update_record, revise_record). Flushes, never commits."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qms.audit_actions import AuditAction
from qms.change_control.hooks import verification_recorder
from qms.change_control.models import ChangeControl, ChangeControlItem, ItemKind, item_problems
from qms.documents.models import Document
from qms.errors import Conflict, InvalidInput, NotFound
from qms.identity.models import User
from qms.materials.models import Material, Supplier
from qms.records.models import record_type_of
from qms.records.service import create_record, required_reason, revise_record, update_record
from qms.records.workflow import Workflow

# A change control authorises the changes it names from approval until it is declared
# implemented: a new version of an effective inspection plan may be approved under it then.
# After verification or closure the change is complete, and a further change needs a new one.
AUTHORISING_STATES = ("approved", "implemented")


def raise_change_control(session: Session, workflow: Workflow, actor: User,
                         fields: Mapping[str, Any]) -> ChangeControl:
    """A new draft change control, version 1, numbered CC-YYYY-NNNNN, with its impacted
    items (each must exist now: 422 naming ``impacted_items.<n>.number`` otherwise)."""
    cleaned = dict(fields)
    cleaned["title"] = (cleaned.get("title") or "").strip()
    items = list(cleaned.get("impacted_items") or [])
    _refuse(item_problems(items))
    require_items_exist(session, items)
    return create_record(session, workflow, actor, cleaned)


def add_impacted_item(session: Session, workflow: Workflow, record: ChangeControl, actor: User,
                      item: Mapping[str, str], reason: str | None, *,
                      expected_version: int | None = None) -> ChangeControl:
    """Name one more existing item (draft only; an edit with a reason, a new version)."""
    entry = {"kind": item["kind"], "number": item["number"]}
    if entry in record.impacted_items:
        raise Conflict(f"{record.number} already names {entry['kind']} {entry['number']}")
    require_items_exist(session, [entry], field="")
    return update_record(session, workflow, record, actor,
                         {"impacted_items": [*record.impacted_items, entry]}, reason,
                         expected_version=expected_version)


def remove_impacted_item(session: Session, workflow: Workflow, record: ChangeControl,
                         actor: User, kind: str, number: str, reason: str | None, *,
                         expected_version: int | None = None) -> ChangeControl:
    """Stop naming an item (draft only; an edit with a reason, a new version)."""
    entry = {"kind": kind, "number": number}
    if entry not in record.impacted_items:
        raise NotFound(f"{record.number} does not name {kind} {number}")
    remaining = [item for item in record.impacted_items if item != entry]
    return update_record(session, workflow, record, actor, {"impacted_items": remaining},
                         reason, expected_version=expected_version)


def record_implementation(session: Session, record: ChangeControl, actor: User, notes: str,
                          reason: str | None) -> ChangeControl:
    """Record (or correct) how the approved change was implemented, before the implementer
    signs ``implement``. Only while the change is approved; a new version."""
    _require_state(record, "approved", "implementation notes are recorded")
    return _revise_fields(session, record, actor, {"implementation_notes": notes.strip()},
                          reason, action="implementation_recorded",
                          event=AuditAction.ChangeControl.IMPLEMENTATION_RECORDED)


def record_verification(session: Session, record: ChangeControl, actor: User, result: str,
                        notes: str, reason: str | None) -> ChangeControl:
    """Record (or correct) the effectiveness verification of an implemented change, before
    the verifier signs ``verify`` (effective) or reopens it (not effective); a new version."""
    _require_state(record, "implemented", "the effectiveness verification is recorded")
    changes = {"verification_result": result, "verification_notes": notes.strip()}
    recorder = verification_recorder(record)
    if recorder not in (None, actor.username) and _unchanged(record, changes):
        # the verifier signs what they recorded, so a second verifier records their own
        raise InvalidInput(f"this repeats the verification {recorder} recorded; record your "
                           "own notes to make the verification yours", field="notes")
    return _revise_fields(session, record, actor, changes, reason,
                          action="verification_recorded",
                          event=AuditAction.ChangeControl.VERIFICATION_RECORDED)


def _revise_fields(session: Session, record: ChangeControl, actor: User,
                   changes: dict[str, Any], reason: str | None, *, action: str,
                   event: str) -> ChangeControl:
    reason = required_reason(reason)
    if _unchanged(record, changes):
        raise InvalidInput("the request does not change anything", field=next(iter(changes)))
    return revise_record(session, record, actor.username, action=action, reason=reason,
                         changes=changes, event=event)


def _unchanged(record: ChangeControl, changes: Mapping[str, Any]) -> bool:
    return all(getattr(record, name) == value for name, value in changes.items())


def _require_state(record: ChangeControl, state: str, what: str) -> None:
    if record.state != state:
        raise Conflict(f"{record.number} is {record.state}; {what} only while it is {state}",
                       extra={"state": record.state})


def require_items_exist(session: Session, items: Iterable[Mapping[str, str]], *,
                        field: str = "impacted_items") -> None:
    """Raise InvalidInput naming ``<field>.<index>.number`` (or ``number`` when ``field``
    is empty) for each item that names no existing record of its kind."""
    problems: dict[str, list[str]] = {}
    for index, item in enumerate(items):
        problem = _missing_item(session, item["kind"], item["number"])
        if problem:
            problems[f"{field}.{index}.number" if field else "number"] = [problem]
    _refuse(problems)


def _missing_item(session: Session, kind: str, number: str) -> str | None:
    model = _item_model(kind)
    if model is None:
        return f"{kind} records are not available in this installation"
    if session.scalar(select(model.id).where(model.number == number).limit(1)) is None:
        return f"no {kind.replace('_', ' ')} {number!r}"
    return None


def _item_model(kind: str) -> type | None:
    if kind == ItemKind.INSPECTION_PLAN.value:
        # looked up at run time, so that change control does not import the inspection module
        try:
            return record_type_of("inspection_plan").model
        except LookupError:
            return None
    return {ItemKind.MATERIAL.value: Material, ItemKind.DOCUMENT.value: Document,
            ItemKind.SUPPLIER.value: Supplier}[kind]


def _refuse(problems: dict[str, list[str]]) -> None:
    if problems:
        raise InvalidInput("the impacted items are not acceptable", errors=problems)


def list_change_controls(session: Session, *, state: str | None = None,
                         risk: str | None = None, change_type: str | None = None,
                         limit: int = 100, offset: int = 0) -> list[ChangeControl]:
    """Change controls, newest first, filtered by state, risk and change type."""
    query = select(ChangeControl).order_by(ChangeControl.id.desc()).limit(limit).offset(offset)
    for column, value in ((ChangeControl.state, state), (ChangeControl.risk, risk),
                          (ChangeControl.change_type, change_type)):
        if value is not None:
            query = query.where(column == value)
    return list(session.scalars(query))


def change_controls_naming(session: Session, kind: str, number: str) -> list[ChangeControl]:
    """Every change control (any state) that names this item now, newest first."""
    return list(session.scalars(_naming(kind, number)))


def approved_change_naming(session: Session, kind: str, number: str) -> ChangeControl | None:
    """The newest change control that names this item and authorises changing it now
    (state approved or implemented, see AUTHORISING_STATES), or None."""
    return session.scalars(_naming(kind, number)
                           .where(ChangeControl.state.in_(AUTHORISING_STATES))).first()


def _naming(kind: str, number: str):
    return (select(ChangeControl).join(ChangeControlItem,
                                       ChangeControlItem.change_control_id == ChangeControl.id)
            .where(ChangeControlItem.kind == kind, ChangeControlItem.item_number == number,
                   ChangeControlItem.removed_at.is_(None))
            .order_by(ChangeControl.id.desc()))
