"""Per-application state (database, security, workflows, audit key) and the per-request
database session, whose single commit point is the endpoint (``request_transaction``): views
and services never commit."""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app, g, request
from sqlalchemy.orm import Session

from qms.db import Database
from qms.errors import must_commit_before_raise
from qms.identity.security import Security

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class AppState:
    db: Database
    security: Security
    workflows: object  # qms.records.workflow.WorkflowRegistry
    audit_key_path: Path
    checkpoint_file: Path
    numbering: object = None  # qms.materials.numbering.NumberingRules (config/numbering.toml)
    site_id: str = ""  # AUDIT_SITE_ID, else <instance>/site_id written by `qms init`
    root_key_id: str = ""  # AUDIT_ROOT_KEY_ID, else <instance>/audit_root_key_id (qms init)
    _audit_key: Ed25519PrivateKey | None = None
    _audit_key_file: tuple[int, int] | None = None  # (inode, mtime) the cached key came from

    def audit_signing_key(self) -> Ed25519PrivateKey:
        """The checkpoint signing key; SigningKeyMissing when its file is gone (never
        re-created here: a new key is an audited rotation). Read again whenever the file
        was replaced, so that a long-running process (qms serve, qms jobs) never signs with
        a key that `qms audit rotate-key` retired (verifiers refuse its later checkpoints)."""
        from audit.checkpoints import load_signing_key

        try:
            stat = self.audit_key_path.stat()
            current = (stat.st_ino, stat.st_mtime_ns)
        except FileNotFoundError:
            current = None  # load_signing_key says so
        if self._audit_key is None or current != self._audit_key_file:
            self._audit_key = load_signing_key(self.audit_key_path)
            self._audit_key_file = current
        return self._audit_key

    def audit_public_keys(self) -> dict:
        """{key id: public key} of the current key and every retired one."""
        from audit.keys import public_keys

        return public_keys(self.audit_signing_key(), self.audit_key_path)

    def audit_site(self) -> str:
        """This instance's site id, named in every checkpoint."""
        if not self.site_id:
            from qms.settings import ConfigError

            raise ConfigError("no audit site id: run `qms init` (it writes instance/site_id) "
                              "or set QMS_AUDIT_SITE_ID")
        return self.site_id

    def forget_audit_key(self) -> None:
        """Drop the cached key after a rotation."""
        self._audit_key = None


def state() -> AppState:
    return current_app.extensions["qms"]


def db_session() -> Session:
    """The request's session: a writer (SQLite BEGIN IMMEDIATE) for unsafe methods."""
    if "db_session" not in g:
        g.db_session = state().db.session(write=request.method not in SAFE_METHODS)
    return g.db_session


def request_transaction(view: Callable) -> Callable:
    """``view`` as the request's one commit point, for API endpoints (qms.api.spec.endpoint)
    and web pages (qms.web.page). A write request (any method but GET, HEAD and OPTIONS)
    commits when the view returns, then runs what waited for the commit (``after_commit``);
    when the view raises, a refusal whose writes are kept (qms.errors.keeping_writes) is
    committed before the error answer, and anything else is rolled back. A read request
    never commits: its session is a reader, rolled back at teardown."""
    @functools.wraps(view)
    def committing(*args: Any, **kwargs: Any) -> Any:
        if request.method in SAFE_METHODS:
            return view(*args, **kwargs)
        try:
            answer = view(*args, **kwargs)
            _commit()
        except BaseException as error:
            if not must_commit_before_raise(error):
                _rollback()
                raise
            _commit()
            raise
        return answer
    committing.commits_request = True  # checked by tests for every API and web view
    return committing


def after_commit(callback: Callable[[], Any]) -> None:
    """Run ``callback`` once the request's transaction has committed (a sign-in, a message
    for the user); never if it rolls back. What leaves the transaction waits for it."""
    g.setdefault("after_commit", []).append(callback)


def _commit() -> None:
    session = g.get("db_session")
    if session is not None:
        session.commit()
    for callback in g.pop("after_commit", []):
        callback()


def _rollback() -> None:
    g.pop("after_commit", None)
    session = g.get("db_session")
    if session is not None:
        session.rollback()


def release_write_lock() -> None:
    """End the request's transaction before slow work (a password hash, a key seal) if a
    writer has begun it: the bearer-token lookup and the web session's user load do, and a
    SQLite writer holds the database-wide write lock from its first statement (BEGIN
    IMMEDIATE). The transaction holds only reads then, and at most the token's recorded use
    (qms.api.record_token_use), which is committed with it; called after the request changed
    anything else, it refuses (RuntimeError), since that change belongs to the request's one
    commit (``request_transaction``). The next statement begins a new transaction, which
    must read again, under its locks, whatever the outcome depends on."""
    session = g.get("db_session")
    if session is None or not session.in_transaction():
        return
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("the request has changed rows: they cannot be committed early")
    session.commit()


def close_db_session(_exc=None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()
