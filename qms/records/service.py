"""The one generic path by which controlled records change: create, update, transition.

Every change bumps the record's version, stores the new version's canonical content and its
sha256 in ``record_versions``, and writes one audit event ``<type>.record.created|updated|
transitioned`` with ``{"version", "before", "after"}`` (only the changed fields), all in the
caller's transaction. These functions flush, never commit.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qms.audit_actions import RecordVerb, record_action
from qms.auditing import record_event
from qms.db import utcnow
from qms.errors import Conflict, InvalidInput, InvalidTransition, NotFound, NotPermitted
from qms.esign.service import (SegregationCheck, not_author, refuse_known_refusal,
                               require_distinct, sign_record, signatures_of,
                               verify_stored_signature)
from qms.identity.models import User
from qms.identity.security import Security
from qms.records.models import (CREATE, UPDATE, RecordType, RecordVersion, VersionedRecord,
                                assign_number, content_digest, content_value, record_content,
                                record_type_of)
from qms.records.workflow import NOT_AUTHOR, NOT_OWNER, NOT_SIGNER_PREFIX, Transition, Workflow


def find_record(session: Session, record_type: RecordType, number: str, *,
                for_update: bool = False) -> VersionedRecord:
    """The record with this number, or NotFound. ``for_update`` locks the row (PostgreSQL)
    so concurrent writers of one record queue; SQLite writers already hold the database.
    Only the record's own row: a joined relationship (a batch's lot) would otherwise be
    locked with it, ahead of the id order in which lots are locked everywhere else."""
    query = select(record_type.model).where(record_type.model.number == number)
    record = session.scalar(query.with_for_update(of=record_type.model) if for_update
                            else query)
    if record is None:
        raise NotFound(f"no {record_type.name} {number!r}")
    return record


def find_named(session: Session, record_type: RecordType, number: str, *, field: str,
               for_update: bool = False, noun: str | None = None) -> VersionedRecord:
    """``find_record`` for a number that came in a request body: an unknown number there is
    bad input (422 naming ``field``: "no <noun> '<number>'"), not a missing resource."""
    try:
        return find_record(session, record_type, number, for_update=for_update)
    except NotFound:
        raise InvalidInput(f"no {noun or record_type.name} {number!r}", field=field) from None


def create_record(session: Session, workflow: Workflow, actor: User,
                  fields: Mapping[str, Any], *, number: str | None = None) -> VersionedRecord:
    """Create a record of the workflow's type in its initial state, version 1, numbered
    ``number`` (a code or a lot number the record type chose; 409 when taken) or else the next
    gapless PREFIX-YYYY-NNNNN. Flushes, never commits."""
    record_type = record_type_of(workflow.record_type)
    _refuse_unknown_fields(fields, record_type.content_fields, "is not a field of "
                           f"a {record_type.name}")
    _refuse_problems(record_type, {name: content_value(fields.get(name))
                                   for name in record_type.content_fields})
    now = utcnow()
    record = record_type.model(**fields, number=_new_number(session, workflow, number, now),
                               state=workflow.initial, version=1, created_at=now,
                               created_by=actor.username, updated_at=now,
                               updated_by=actor.username)
    session.add(record)
    session.flush()
    content = _store_version(session, record_type, record, action=CREATE, reason=None)
    record_event(session, actor=actor.username,
                 action=record_action(record_type.name, RecordVerb.CREATED),
                 data={"version": 1, "before": {}, "after": {**content, "state": record.state}},
                 entity=(record_type.name, record.number))
    return record


def _new_number(session: Session, workflow: Workflow, number: str | None,
                now: datetime) -> str:
    if number is None:
        if workflow.prefix is None:
            raise ValueError(f"{workflow.record_type} records are numbered by their type")
        return assign_number(session, workflow.prefix, now.year)
    model = record_type_of(workflow.record_type).model
    if session.scalar(select(model.id).where(model.number == number)) is not None:
        raise Conflict(f"a {workflow.record_type} {number!r} already exists",
                       extra={"number": number})
    return number


def update_record(session: Session, workflow: Workflow, record: VersionedRecord, actor: User,
                  changes: Mapping[str, Any], reason: str | None, *,
                  expected_version: int | None = None) -> VersionedRecord:
    """Change editable fields of a record in an editable state, with a mandatory reason.
    Refuses unknown or read-only fields and changes that change nothing. An edit in a state
    the workflow's ``edit_returns_to`` names (an approved supplier) moves the record back
    for approval in the same version: the approval's signature stays with the version it
    signed, and the record no longer counts as approved. Flushes, never commits."""
    record_type = record_type_of(workflow.record_type)
    reason = required_reason(reason)
    if not workflow.is_editable(record.state):
        raise Conflict(f"{record.number} is {record.state}; it can be edited only in "
                       f"{', '.join(sorted(workflow.editable_states)) or 'no state'}")
    _check_expected_version(record, expected_version)
    _refuse_unknown_fields(changes, tuple(record_type.editable_fields), "cannot be edited")
    before = record_content(record_type, record)
    changed = sorted(name for name, value in changes.items()
                     if content_value(value) != before[name])
    if not changed:
        raise InvalidInput("the changes do not change anything", field="changes")
    _refuse_problems(record_type, {**before, **{n: content_value(changes[n]) for n in changed}})
    for name in changed:
        setattr(record, name, changes[name])
    previous_state = record.state
    record.state = workflow.state_after_edit(previous_state)
    _next_version(record, actor)
    after = _store_version(session, record_type, record, action=UPDATE, reason=reason)
    data = {"version": record.version, "before": {n: before[n] for n in changed},
            "after": {n: after[n] for n in changed}}
    if record.state != previous_state:
        data["before"]["state"], data["after"]["state"] = previous_state, record.state
    record_event(session, actor=actor.username,
                 action=record_action(record_type.name, RecordVerb.UPDATED),
                 data=data, entity=(record_type.name, record.number), reason=reason)
    if record_type.state_changed is not None and record.state != previous_state:
        record_type.state_changed(session, record, previous_state, actor.username, reason, None)
    return record


def apply_transition(session: Session, security: Security, workflow: Workflow,
                     record: VersionedRecord, actor: User, action: str, reason: str | None,
                     signature_credentials: Mapping[str, str] | None, *,
                     expected_version: int | None = None) -> VersionedRecord:
    """Move the record along the workflow. The actor's permission is checked before the
    record's state, so a refusal tells nobody the state. A signed transition names the
    version the signer saw (``expected_version``: 422 naming ``version`` when missing, 409
    when the record moved on) and signs the new version, whose content is unchanged, with
    the actor's key (qms.esign.service.sign_record): a refused signature raises with
    ``commit_before_raise`` before the record is touched, so that the endpoint can commit
    the refusal alone. Flushes, never commits."""
    transition, reason = check_transition(security, workflow, record, actor, action, reason,
                                          signature_credentials, expected_version)
    record_type = record_type_of(workflow.record_type)
    signing = _signing(session, security, record_type, record, actor, transition,
                       signature_credentials)
    if signing is not None:  # a signature refused anyway is refused before the rules below
        refuse_known_refusal(session, security, **signing)
    if record_type.before_transition is not None:
        record_type.before_transition(session, record, transition, actor, reason)
    signature = _sign(session, security, record_type, record, signing)
    before = record.state
    record.state = transition.target
    _next_version(record, actor)
    _store_version(session, record_type, record, action=action, reason=reason)
    data = {"version": record.version, "action": action, "before": {"state": before},
            "after": {"state": record.state}}
    if signature is not None:
        data["signature_id"] = signature.id
    record_event(session, actor=actor.username,
                 action=record_action(record_type.name, RecordVerb.TRANSITIONED),
                 data=data, entity=(record_type.name, record.number), reason=reason)
    if record_type.state_changed is not None and record.state != before:
        record_type.state_changed(session, record, before, actor.username, reason, signature)
    if record_type.after_transition is not None:
        record_type.after_transition(session, record, transition, actor, reason)
    return record


def check_transition(security: Security, workflow: Workflow, record: VersionedRecord,
                     actor: User, action: str, reason: str | None,
                     signature_credentials: Mapping[str, str] | None,
                     expected_version: int | None) -> tuple[Transition, str | None]:
    """The checks of a transition request that need neither the password nor a write: the
    actor's permission (before the record's state, so a refusal tells nobody the state), the
    action open from the state, the transition's permission, a signature exactly where the
    workflow asks for one, the version the signer saw, the reason. Returns the transition and
    the reason to record; raises otherwise."""
    _require_action_permission(security, workflow, actor, action)
    transition = _open_transition(workflow, record, action)
    if not security.roles.allows(actor.roles, transition.permission):
        raise NotPermitted(f"{action!r} needs permission {transition.permission!r}")
    _check_signed_request(transition, signature_credentials, expected_version)
    _check_expected_version(record, expected_version)
    reason = required_reason(reason) if transition.reason_required else _optional_reason(reason)
    return transition, reason


def revise_record(session: Session, record: VersionedRecord, actor: str, *, action: str,
                  reason: str | None, changes: Mapping[str, Any] | None = None,
                  state: str | None = None, details: Mapping[str, Any] | None = None,
                  event: str | None = None, signature=None) -> VersionedRecord:
    """A change the domain makes outside the edit and workflow paths: a child row added (a
    result, a CAPA action, an approval; add and flush it first), fields or a state that
    follow from another record (a lot put on hold by a deviation, expired by the scheduled
    job, released by a usage decision). Versioned and audited like any change, as ``event``
    (default ``<type>.record.revised``, e.g. ``inspection.result.recorded``) with the changed
    content and ``details``; ``actor`` is a username or ``system``; ``signature`` the one that
    decided it on another record, if any (passed on to ``state_changed``). Flushes, never
    commits."""
    record_type = record_type_of(record.record_type)
    if action not in record_type.content_revisions | record_type.decision_revisions:
        raise ValueError(f"{record_type.name}: revision {action!r} is declared neither a "
                         "content change nor a decision (RecordType)")
    before = {**_stored_content(session, record), "state": record.state}
    for name, value in (changes or {}).items():
        setattr(record, name, value)
    if state is not None:
        record.state = state
    record.version += 1
    record.updated_at, record.updated_by = utcnow(), actor
    after = {**_store_version(session, record_type, record, action=action, reason=reason),
             "state": record.state}
    changed = sorted(name for name in after if before.get(name) != after[name])
    if not changed:
        raise ValueError(f"{record.number}: revision {action!r} changes nothing")
    record_event(session, actor=actor,
                 action=event or record_action(record_type.name, RecordVerb.REVISED),
                 data={"version": record.version, "action": action,
                       "before": {n: before.get(n) for n in changed},
                       "after": {n: after[n] for n in changed}, **(details or {})},
                 entity=(record_type.name, record.number), reason=reason)
    if record_type.state_changed is not None and record.state != before["state"]:
        record_type.state_changed(session, record, before["state"], actor, reason, signature)
    return record


def _stored_content(session: Session, record: VersionedRecord) -> dict[str, Any]:
    """The content of the record's latest stored version (child rows just added are not
    in it yet)."""
    stored = session.scalar(select(RecordVersion.content).where(
        RecordVersion.record_type == record.record_type, RecordVersion.record_id == record.number,
        RecordVersion.version == record.version))
    return json.loads(stored)


def _require_action_permission(security: Security, workflow: Workflow, actor: User,
                               action: str) -> None:
    """403 unless the actor holds the permission of some transition named ``action``,
    whatever the record's state (an action the workflow does not know passes on to the
    state check, which names the open actions)."""
    permissions = workflow.permissions_for(action)
    if permissions and not any(security.roles.allows(actor.roles, p) for p in permissions):
        raise NotPermitted(f"{action!r} needs permission "
                           f"{' or '.join(repr(p) for p in sorted(permissions))}")


def _open_transition(workflow: Workflow, record: VersionedRecord, action: str) -> Transition:
    transition = workflow.find(record.state, action)
    if transition is None:
        open_actions = [t.action for t in workflow.transitions_from(record.state)]
        raise InvalidTransition(
            f"{action!r} is not possible from state {record.state!r}; open actions: "
            f"{', '.join(open_actions) or 'none'}",
            extra={"state": record.state, "open_actions": open_actions})
    return transition


def _check_signed_request(transition: Transition, credentials: Mapping[str, str] | None,
                          expected_version: int | None) -> None:
    """422 naming ``signature`` unless the request signs exactly when the transition is
    signed, and naming ``version`` when a signed request does not name the version the
    signer saw."""
    if not transition.signed:
        if credentials:
            raise InvalidInput(f"{transition.action!r} takes no signature", field="signature")
        return
    if not credentials:
        raise InvalidInput(f"{transition.action!r} needs an electronic signature meaning "
                           f"{transition.meaning!r}", field="signature")
    if expected_version is None:
        raise InvalidInput(f"{transition.action!r} is signed: name the version you saw "
                           "(version)", field="version")


def _signing(session: Session, security: Security, record_type: RecordType,
             record: VersionedRecord, actor: User, transition: Transition,
             credentials: Mapping[str, str] | None) -> dict[str, Any] | None:
    """What a signed transition's signature is asked for (``sign_record``'s arguments but
    the content hash); None for an unsigned transition."""
    if not transition.signed:
        return None
    return {"user": actor, "credentials": credentials, "record_type": record_type.name,
            "record_id": record.number, "record_version": record.version + 1,
            "required_meaning": transition.meaning,
            "required_permission": transition.permission,
            "segregation": segregation_checks(session, record, transition)}


def _sign(session: Session, security: Security, record_type: RecordType,
          record: VersionedRecord, signing: dict[str, Any] | None):
    if signing is None:
        return None
    _, content_hash = content_digest(record_content(record_type, record))
    return sign_record(session, security, content_hash=content_hash, **signing)


def segregation_checks(session: Session, record: VersionedRecord,
                       transition: Transition) -> list[SegregationCheck]:
    """The transition's segregation rules as checks on a signer's username."""
    return [_author_check(session, record) if rule == NOT_AUTHOR
            else _owner_check(record) if rule == NOT_OWNER
            else _signer_check(session, record, rule.removeprefix(NOT_SIGNER_PREFIX),
                               transition.meaning)
            for rule in transition.segregation]


def _owner_check(record: VersionedRecord) -> SegregationCheck:
    owners_of = record_type_of(record.record_type).owners
    owners = owners_of(record) if owners_of is not None else set()
    return lambda signer: require_distinct(
        signer, owners, f"{signer} owns {record.number} and may not also sign it")


def _author_check(session: Session, record: VersionedRecord) -> SegregationCheck:
    editors = authors_of(session, record)
    return lambda signer: not_author(record, signer, editors)


def _signer_check(session: Session, record: VersionedRecord, earlier: str,
                  meaning: str) -> SegregationCheck:
    signers = {s.signer for s in signatures_of(session, record.record_type, record.number)
               if s.meaning == earlier}
    return lambda signer: require_distinct(
        signer, signers, f"{signer} signed {record.number} as {earlier} and may not also "
                         f"sign it as {meaning}")


def authors_of(session: Session, record: VersionedRecord) -> set[str]:
    """The one definition of authorship ("not_author", and the release of a batch): everyone
    who made a version of the record by changing its content (created it, edited it, or took
    one of its type's content revisions: RecordType.authoring_actions). Signatures,
    transitions and decision revisions make nobody an author."""
    authoring = record_type_of(record.record_type).authoring_actions
    return set(session.scalars(select(RecordVersion.changed_by).where(
        RecordVersion.record_type == record.record_type,
        RecordVersion.record_id == record.number,
        RecordVersion.action.in_(sorted(authoring)))))


def required_reason(reason: str | None) -> str:
    """The stripped reason, or InvalidInput naming ``reason`` (every change after creation
    needs one)."""
    if reason is None or not reason.strip():
        raise InvalidInput("a reason is required for this change", field="reason")
    return reason.strip()


def _optional_reason(reason: str | None) -> str | None:
    return (reason or "").strip() or None


def _check_expected_version(record: VersionedRecord, expected: int | None) -> None:
    if expected is not None and expected != record.version:
        raise Conflict(f"{record.number} is at version {record.version}, not {expected}; "
                       "reload it and try again", extra={"version": record.version})


def _refuse_unknown_fields(fields: Mapping[str, Any], allowed: tuple[str, ...], why: str) -> None:
    errors = {name: [f"{name} {why}"] for name in fields if name not in allowed}
    if errors:
        raise InvalidInput("the request names fields that cannot be set", errors=errors)


def _refuse_problems(record_type: RecordType, content: dict[str, Any]) -> None:
    errors = record_type.problems(content)
    if errors:
        raise InvalidInput("the record's content is not acceptable", errors=errors)


def _next_version(record: VersionedRecord, actor: User) -> None:
    record.version += 1
    record.updated_at = utcnow()
    record.updated_by = actor.username


def _store_version(session: Session, record_type: RecordType, record: VersionedRecord, *,
                   action: str, reason: str | None) -> dict[str, Any]:
    """Snapshot the record's current version; returns its content."""
    content = record_content(record_type, record)
    text, digest = content_digest(content)
    session.add(RecordVersion(record_type=record_type.name, record_id=record.number,
                              version=record.version, action=action, state=record.state,
                              content=text, content_hash=digest, changed_at=record.updated_at,
                              changed_by=record.updated_by, reason=reason))
    session.flush()
    return content


def current_content_hash(record: VersionedRecord) -> str:
    return content_digest(record_content(record_type_of(record.record_type), record))[1]


def record_history(session: Session, record: VersionedRecord) -> dict[str, Any]:
    """Every version (content, and the changes from the version before) and every signature
    with whether the content it signed is still the current content."""
    versions = session.scalars(select(RecordVersion).where(
        RecordVersion.record_type == record.record_type,
        RecordVersion.record_id == record.number).order_by(RecordVersion.version)).all()
    current_hash = versions[-1].content_hash
    entries, previous = [], None
    for version in versions:
        entries.append(_version_entry(version, previous))
        previous = entries[-1]
    signatures = [{"signature": s, "valid_for_current_version": s.content_hash == current_hash,
                   "verified": verify_stored_signature(session, s)}
                  for s in signatures_of(session, record.record_type, record.number)]
    return {"record_type": record.record_type, "number": record.number,
            "version": record.version, "content_hash": current_hash,
            "changed_since_signing": any(not s["valid_for_current_version"] for s in signatures),
            "versions": entries, "signatures": signatures}


def _version_entry(version: RecordVersion, previous: dict[str, Any] | None) -> dict[str, Any]:
    content = json.loads(version.content)
    old = {**previous["content"], "state": previous["state"]} if previous else {}
    new = {**content, "state": version.state}
    changes = {name: {"before": old.get(name), "after": value}
               for name, value in new.items() if name not in old or old[name] != value}
    return {"version": version.version, "action": version.action, "state": version.state,
            "changed_at": version.changed_at, "changed_by": version.changed_by,
            "reason": version.reason, "content": content, "content_hash": version.content_hash,
            "changes": changes}
