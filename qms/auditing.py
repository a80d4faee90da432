"""The application's one way into the audit trail: every service writes its events here."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from audit import trail

SYSTEM_ACTOR = "system"


def record_event(session: Session, *, actor: str, action: str, data: dict[str, Any],
                 entity: tuple[str, str] | None = None, reason: str | None = None) -> trail.Event:
    """Append one event inside the session's transaction (flushes pending ORM changes first
    so the event follows the change it describes). Never commits."""
    session.flush()
    return trail.append(session, actor=actor, action=action, data=data, entity=entity,
                        reason=reason)


# How far an earlier verification found the events canonical: (seq, hash). Kept in the
# instance folder, beside the key and the checkpoint file, and only ever a shortcut: the
# verifier uses it only where the chain still has that hash at that seq.
FORM_CHECKED_FILE = "audit-form-checked.json"


def verify_trail(session: Session, progress=None):
    """verify_chain with this instance's public keys (current and retired), checkpoint file
    and site. Read-only on the database; remembers in the instance folder how far the
    canonical form was checked, so that a repeated verification parses only new events."""
    from audit.verify import verify_chain
    from qms.context import state

    app_state = state()
    memo = Path(current_app.instance_path) / FORM_CHECKED_FILE
    result = verify_chain(session.connection(), public_keys=app_state.audit_public_keys(),
                          checkpoint_file=app_state.checkpoint_file,
                          site=app_state.audit_site(), form_known=_read_form_checked(memo),
                          trusted_key_id=app_state.root_key_id or None,
                          progress=progress)
    _write_form_checked(memo, result.form_checked)
    return result


def _read_form_checked(memo: Path) -> tuple[int, str] | None:
    try:
        document = json.loads(memo.read_text(encoding="utf-8"))
        seq, digest = document["seq"], document["hash"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none yet, or unreadable: check everything
    return (seq, digest) if type(seq) is int and isinstance(digest, str) else None


def _write_form_checked(memo: Path, form_checked: tuple[int, str]) -> None:
    temporary = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps({"seq": form_checked[0], "hash": form_checked[1]}),
                             encoding="utf-8")
        os.replace(temporary, memo)
    except OSError:
        temporary.unlink(missing_ok=True)  # a read-only instance folder: no shortcut
