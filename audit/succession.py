"""Which key and which site may sign a checkpoint, as the chain itself records it.

A valid signature is not enough: whoever holds the instance folder could swap in a key of
their own and plant its predecessor's public key as "retired", or give a copy of the
instance another site id. So both changes are events of the chain, and both verifiers hold
every checkpoint against them:

- **Keys.** The trust root (the first checkpoint's key, as recorded at ``qms init``)
  signs from the start. Any other key is introduced by an ``audit.key.rotated`` event
  naming it as ``new_key_id``, whose ``old_key_id`` was allowed before, once a checkpoint
  signed with that old key covers the event (its seq is at or after the event's): the old
  key hands over to the new one there, and the new key may sign checkpoints from that seq
  on. The old key is retired at the new key's first checkpoint: it signs nothing after.
- **Sites.** A checkpoint names the site in effect at its seq: before the first
  ``audit.site.changed`` event that event's ``old_site``, from each such event on its
  ``new_site`` (without any, the instance's site). Each change starts where the one before
  ended, and the last one names the instance's site. Legacy checkpoints without a site are
  accepted for any site.

The events are read with one indexed query; the verifier adds their seqs to the walk's
wanted hashes and holds their text against the chain (``problems``).
"""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha256

from cryptography.exceptions import InvalidSignature
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from audit.schema import audit_checkpoints, audit_events

ROTATION_ACTION = "audit.key.rotated"
SITE_CHANGE_ACTION = "audit.site.changed"
_FIELDS = {ROTATION_ACTION: ("old_key_id", "new_key_id"),
           SITE_CHANGE_ACTION: ("old_site", "new_site")}
_NEVER = float("inf")


def rotation_data(old_key_id: str, new_key_id: str, site: str) -> dict:
    """The ``data`` of an ``audit.key.rotated`` event."""
    return {"new_key_id": new_key_id, "old_key_id": old_key_id, "site": site}


def site_change_data(old_site: str | None, new_site: str) -> dict:
    """The ``data`` of an ``audit.site.changed`` event (old_site None: there was none)."""
    return {"new_site": new_site, "old_site": old_site}


@dataclass(frozen=True, slots=True)
class Handover:
    """A rotation (old key id -> new key id) or a site change (old site -> new site),
    recorded by the event at ``seq``."""
    seq: int
    old: str | None
    new: str


@dataclass
class Succession:
    rotations: list[Handover] = field(default_factory=list)
    site_changes: list[Handover] = field(default_factory=list)
    malformed: list[tuple[int, str]] = field(default_factory=list)
    texts: dict[int, bytes] = field(default_factory=dict)  # seq -> canonical bytes

    def site_at(self, seq: int, site: str | None) -> str | None:
        """The site a checkpoint at ``seq`` must name (``site``: the instance's, or None
        when any will do)."""
        return site_at(self.site_changes, seq, site)

    def problems(self, found: dict[int, str], last_seq: int, site: str | None
                 ) -> list[tuple[int, str]]:
        """(seq, why) for events that are not the chain's own (their hash differs from
        the walk's), malformed events, and site changes that do not join up."""
        problems = [(seq, f"event {seq} ({_action(text)}) read for the key and site rules "
                          "is not the event the chain holds at that seq")
                    for seq, text in self.texts.items()
                    if seq <= last_seq and seq in found
                    and sha256(text).hexdigest() != found[seq]]
        return problems + self.malformed + site_change_problems(self.site_changes, site)


def read_succession(connection: Session | Connection) -> Succession:
    """Every key rotation and site change of the chain, in seq order (not verified)."""
    if isinstance(connection, Session):
        connection = connection.connection()
    rows = connection.execute(select(audit_events.c.seq, audit_events.c.canonical)
                              .where(audit_events.c.action.in_(tuple(_FIELDS)))
                              .order_by(audit_events.c.seq))
    return succession_of((seq, text.encode("utf-8")) for seq, text in rows)


def succession_of(events: Iterable[tuple[int, bytes]]) -> Succession:
    """The Succession of ``(seq, canonical bytes)`` of rotation and site change events."""
    succession = Succession()
    for seq, text in events:
        succession.texts[seq] = text
        action, handover = _handover(seq, text)
        if handover is None:
            succession.malformed.append((seq, f"event {seq} ({action}) does not name "
                                              f"{' and '.join(_FIELDS.get(action, ()))}"))
        elif action == ROTATION_ACTION:
            succession.rotations.append(handover)
        else:
            succession.site_changes.append(handover)
    return succession


def _handover(seq: int, text: bytes) -> tuple[str, Handover | None]:
    try:
        document = json.loads(text)
        action, data = document["action"], document["data"]
        old, new = (data[name] for name in _FIELDS[action])
    except (ValueError, KeyError, TypeError):
        return _action(text), None
    old_ok = isinstance(old, str) or old is None and action == SITE_CHANGE_ACTION
    return action, Handover(seq, old, new) if old_ok and isinstance(new, str) else None


def _action(text: bytes) -> str:
    return next((action for action in _FIELDS if f'"action":"{action}"'.encode() in text),
                "unreadable")


def site_at(changes: Sequence[Handover], seq: int, site: str | None) -> str | None:
    """The site a checkpoint at ``seq`` must name, given the chain's site changes."""
    before = [change for change in changes if change.seq <= seq]
    if before:
        return before[-1].new
    return changes[0].old if changes else site


def site_change_problems(changes: Sequence[Handover], site: str | None,
                         whose: str = "this instance's") -> list[tuple[int, str]]:
    problems = [(after.seq, (
        f"event {after.seq} ({SITE_CHANGE_ACTION}) changes the site from {after.old!r}, but "
        f"event {before.seq} had changed it to {before.new!r}"))
        for before, after in zip(changes, changes[1:]) if after.old != before.new]
    if changes and site is not None and changes[-1].new != site:
        last = changes[-1]
        problems.append((last.seq, f"event {last.seq} ({SITE_CHANGE_ACTION}) changed the "
                                   f"site to {last.new!r}, but {whose} site is {site!r}"))
    return problems


def unintroduced_keys(checkpoints: Sequence, rotations: Sequence[Handover],
                      root: str | None = None) -> dict:
    """{checkpoint: why} for the checkpoints (verified, matching the chain; objects with
    ``seq`` and ``key_id``) whose key the chain did not let sign at their seq.

    ``root`` is the trusted first key's id (the verifier is told it: qms init records it);
    the first checkpoint signed with another key is refused, so a chain rewritten from seq
    1 under a key of the attacker's does not verify just because that key was given. None:
    the first checkpoint's key (for callers that pinned nothing; the result names it). A
    key hands over to the next at its checkpoint covering the rotation event, and is retired
    once the next key's first checkpoint exists: its checkpoints at higher seqs are refused,
    and so is a handover of its own there (a retired key cannot introduce another key).
    """
    ordered = sorted(checkpoints, key=lambda cp: cp.seq)
    if not ordered:
        return {}
    root = root or ordered[0].key_id
    allowed = {root: 0}  # key id -> the lowest seq it may sign
    retired_after, introduced_by = {}, {}  # key id -> seq of its successor's first checkpoint
    for rotation in rotations:
        if rotation.old not in allowed or rotation.new in allowed:
            continue
        # the old key hands over with a checkpoint it may still sign: not once retired
        handover = next((cp.seq for cp in ordered if cp.key_id == rotation.old
                         and max(rotation.seq, allowed[rotation.old]) <= cp.seq
                         <= retired_after.get(rotation.old, _NEVER)), None)
        if handover is not None:
            allowed[rotation.new], introduced_by[rotation.new] = handover, rotation.seq
            first = next((cp.seq for cp in ordered
                          if cp.key_id == rotation.new and cp.seq >= handover), None)
            if first is not None:  # a retirement only ever moves earlier
                retired_after[rotation.old] = min(first, retired_after.get(rotation.old,
                                                                           first))
    return {cp: why for cp in ordered
            if (why := _key_problem(cp, allowed, retired_after, introduced_by, root))}


def _key_problem(cp, allowed: dict, retired_after: dict, introduced_by: dict,
                 root: str) -> str:
    if cp.key_id not in allowed:
        return (f"signed with key {cp.key_id}, which no {ROTATION_ACTION} event introduces "
                f"under a checkpoint of the key before it (the trusted first key is {root}): "
                "a key swapped in, not rotated")
    if cp.seq < allowed[cp.key_id]:
        return (f"signed with key {cp.key_id} before the key before it handed over at seq "
                f"{allowed[cp.key_id]} (rotation event {introduced_by[cp.key_id]})")
    if cp.key_id in retired_after and cp.seq > retired_after[cp.key_id]:
        return (f"signed with key {cp.key_id}, retired once its successor signed its first "
                f"checkpoint at seq {retired_after[cp.key_id]}: a retired key signs nothing")
    return ""


def current_site(connection: Session | Connection, public_keys: Mapping | None = None
                 ) -> str | None:
    """The site the chain says this instance is at its end: the last site change's new
    site, else the site of the newest checkpoint row naming one whose signature verifies
    under ``public_keys`` ({key id: Ed25519 public key}; None: no row counts). None: neither
    says. An unsigned row (anyone who may insert one) cannot so stop checkpoint signing."""
    if isinstance(connection, Session):
        connection = connection.connection()
    change = connection.execute(
        select(audit_events.c.canonical).where(audit_events.c.action == SITE_CHANGE_ACTION)
        .order_by(audit_events.c.seq.desc()).limit(1)).scalar()
    handover = None if change is None else _handover(0, change.encode("utf-8"))[1]
    if handover is not None:
        return handover.new
    rows = connection.execute(select(audit_checkpoints.c.canonical, audit_checkpoints.c.signature)
                              .order_by(audit_checkpoints.c.seq.desc()))
    for canonical, signature in rows if public_keys else ():
        site = _signed_site(canonical, signature, public_keys)
        if site is not None:
            return site
    return None


def _signed_site(canonical: str, signature: str, public_keys: Mapping) -> str | None:
    """The site a checkpoint row names when its signature verifies, else None."""
    try:
        payload = json.loads(canonical)
        public_keys[payload["key_id"]].verify(base64.b64decode(signature, validate=True),
                                              canonical.encode("utf-8"))
    except (ValueError, KeyError, TypeError, AttributeError, InvalidSignature, binascii.Error):
        return None  # the verifier reports the row
    site = payload.get("site")
    return site if isinstance(site, str) else None
