"""Audit action names live in one place (qms/audit_actions.py) and are all documented
(docs/audit-trail-format.md section 9); the texts themselves are the public format and
never change (issue 10 item 5)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from audit.checkpoints import CHECKPOINT_ACTION
from audit.succession import ROTATION_ACTION, SITE_CHANGE_ACTION
from audit.trail import ACTION_PATTERN
from qms import models  # noqa: F401  (registers every record type)
from qms.audit_actions import AREAS, AuditAction, RecordVerb, fixed_actions, record_action
from qms.records.models import registered_record_types

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "audit-trail-format.md").read_text(encoding="utf-8")
SECTION = DOC[DOC.index("## 9. The actions"):]
GENERIC = {f"<type>.record.{verb.value}" for verb in RecordVerb}
CONSTANTS_MODULE = ROOT / "qms" / "audit_actions.py"


def documented_actions() -> set[str]:
    """The first cell of every table row in section 9."""
    return {match.group(1) for match in re.finditer(r"^\| `([^`]+)` \|", SECTION, re.M)}


def test_every_named_action_is_documented_and_every_documented_one_is_named():
    documented = documented_actions()
    assert documented - GENERIC == fixed_actions()
    assert GENERIC <= documented


def test_the_documented_record_types_are_the_registered_ones():
    listed = re.search(r"Every controlled record type \(([^)]*)\)", SECTION).group(1)
    assert re.findall(r"`([a-z_]+)`", listed) == registered_record_types()


def test_the_texts_are_the_stored_ones():
    """A sample pinned by hand (the names are in existing trails: they never change), and
    every name a valid dotted tag, each written once."""
    assert AuditAction.Identity.LOGIN_FAILED == "identity.login.failed"
    assert AuditAction.Esign.SIGNATURE_APPLIED == "signature.applied"
    assert AuditAction.Lot.STATUS_DECIDED == "lot.status.decided"
    assert AuditAction.Inspection.PLAN_SUPERSEDED == "inspection_plan.record.superseded"
    assert record_action("deviation", RecordVerb.CREATED) == "deviation.record.created"
    assert record_action("change_control", RecordVerb.REVISED) == \
        "change_control.record.revised"
    # the audit library's own actions are the library's constants, re-exported
    assert (AuditAction.Audit.CHECKPOINT_SIGNED, AuditAction.Audit.KEY_ROTATED,
            AuditAction.Audit.SITE_CHANGED) == (CHECKPOINT_ACTION, ROTATION_ACTION,
                                                SITE_CHANGE_ACTION)
    values = [member.value for area in AREAS for member in area]
    assert len(values) == len(set(values))
    assert all(ACTION_PATTERN.match(value) for value in values)
    assert all(ACTION_PATTERN.match(record_action(name, verb))
               for name in registered_record_types() for verb in RecordVerb)


def _looks_like_an_action(text: str) -> bool:
    return text in fixed_actions() or bool(re.fullmatch(
        r"[a-z_]+\.record\.(" + "|".join(verb.value for verb in RecordVerb) + ")", text))


def _builds_a_record_action(node: ast.JoinedStr) -> bool:
    """An f-string ending in ``.record.<verb>``: record_action's job."""
    last = node.values[-1] if node.values else None
    return isinstance(last, ast.Constant) and bool(re.fullmatch(
        r"\.record\.(" + "|".join(verb.value for verb in RecordVerb) + ")", str(last.value)))


def action_literals() -> list[str]:
    """Action names written as text in qms/ outside the constants module: a string equal to
    an action, an f-string building ``<type>.record.<verb>``, and any text or f-string passed
    as ``action=`` or ``event=`` that is a dotted tag (the record core's ``action=`` is the
    version's action, a plain word)."""
    found = []
    for path in sorted((ROOT / "qms").rglob("*.py")):
        if path == CONSTANTS_MODULE or "migrations" in path.parts:
            continue
        where = path.relative_to(ROOT)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and _looks_like_an_action(node.value):
                found.append(f"{where}:{node.lineno}: {node.value!r}")
            elif isinstance(node, ast.JoinedStr) and _builds_a_record_action(node):
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
            elif isinstance(node, ast.keyword) and node.arg in ("action", "event") and (
                    isinstance(node.value, ast.JoinedStr) or (
                        isinstance(node.value, ast.Constant) and "." in str(node.value.value))):
                found.append(f"{where}:{node.lineno}: {node.arg}={ast.unparse(node.value)}")
    return found


def test_no_action_is_spelled_outside_the_constants_module():
    found = action_literals()
    assert not found, "use qms.audit_actions instead of:\n" + "\n".join(found)
