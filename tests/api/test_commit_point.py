"""The endpoint is the request's one commit point (qms.context.request_transaction): a write
commits once its view has returned; a view that raises after writing leaves nothing written,
except a refusal whose writes are kept (qms.errors.keeping_writes), which is committed
exactly as far as it wrote; a GET never commits; and no view module commits by itself."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from flask import Blueprint
from sqlalchemy import select, text

from qms.api import spec
from qms.api.spec import endpoint
from qms.auditing import record_event
from qms.context import after_commit, db_session
from qms.errors import Conflict, SignatureRefused, keeping_writes
from qms.identity.authentication import find_user

QMS = Path(__file__).resolve().parents[2] / "qms"
# where views live: each domain's api.py (and views.py, its pages), the API core, the web UI
VIEW_MODULES = sorted({*QMS.glob("*/api.py"), *QMS.glob("*/views.py"), *QMS.glob("api/*.py"),
                       *QMS.glob("web/*.py")})


def commit_calls(path: Path) -> list[str]:
    """``file:line`` of every call of something named ``commit`` (``commit()``,
    ``session.commit()``, ``db_session().commit()``) and every import of such a name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        elif isinstance(node, ast.ImportFrom):
            name = next((a.name for a in node.names if "commit" in a.name), None)
        else:
            continue
        if name and "commit" in name.lower() and name != "after_commit":
            found.append(f"{path}:{node.lineno}")
    return found


def test_no_view_module_commits():
    assert len(VIEW_MODULES) > 15  # the globs still find the views
    assert [call for path in VIEW_MODULES for call in commit_calls(path)] == []


def test_the_check_finds_every_way_of_committing(tmp_path):
    view = tmp_path / "api.py"
    view.write_text("from qms.context import commit, db_session\n\n"
                    "def v(session):\n    commit()\n    session.commit()\n"
                    "    db_session().commit()\n    after_commit(print)\n"
                    "    # commit() in a comment is no call\n")
    assert commit_calls(view) == [f"{view}:{line}" for line in (1, 4, 5, 6)]


def test_every_api_and_web_view_commits_through_the_endpoint(app):
    views = {name: view for name, view in app.view_functions.items()
             if name.split(".")[0] in ("api", "web") and name != "web.static"}
    assert len(views) > 40
    assert [name for name, view in views.items()
            if not getattr(view, "commits_request", False)] == []


@pytest.fixture
def probe(app, monkeypatch, make_user):
    """Endpoints under /probe that write an audit event and a failure count of user
    ``pat``, then answer, raise, or raise a refusal that keeps its writes."""
    monkeypatch.setattr(spec, "OPERATIONS", [])  # the OpenAPI document stays the product's
    make_user("pat", "production")
    bp = Blueprint("probe", __name__, url_prefix="/probe")
    ran_after_commit: list[int] = []

    def write() -> None:
        session = db_session()
        find_user(session, "pat", for_update=True).failed_attempts += 1
        record_event(session, actor="pat", action="identity.login.failed",
                     data={"purpose": "probe"}, entity=("user", "pat"))

    def answer(how: str):
        write()
        after_commit(lambda: ran_after_commit.append(committed_seq(app)))
        if how == "conflict":
            raise Conflict("refused after writing")
        if how == "kept":
            raise keeping_writes(SignatureRefused("refused, and audited"))
        if how == "crash":
            raise RuntimeError("a server fault after writing")
        return {"written": True}

    for method in ("POST", "GET"):
        endpoint(bp, "/<how>", method, summary="probe", tag="probe", public=True,
                 errors=(403, 409))(answer)
    app.extensions["csrf"].exempt(bp)
    app.register_blueprint(bp)
    return ran_after_commit


def committed_seq(app) -> int:
    with app.extensions["qms"].db.engine.connect() as connection:
        return connection.scalar(text("SELECT seq FROM audit_head"))


def failed_attempts(app) -> int:
    with app.extensions["qms"].db.reading() as reader:
        return find_user(reader, "pat").failed_attempts


def test_a_write_commits_once_the_view_returns(app, client, probe):
    start = committed_seq(app)
    assert client.post("/probe/ok").status_code == 200
    assert committed_seq(app) == start + 1 and failed_attempts(app) == 1
    assert probe == [start + 1]  # after_commit ran, and saw the commit


@pytest.mark.parametrize("how, status", [("conflict", 409), ("crash", 500)])
def test_a_view_that_raises_after_writing_leaves_nothing_written(app, client, probe,
                                                                 db_snapshot, how, status):
    app.testing = False  # a server fault answers 500 instead of reaching the test
    before = db_snapshot()
    assert client.post(f"/probe/{how}").status_code == status
    assert db_snapshot() == before and failed_attempts(app) == 0
    assert probe == []  # nothing waited on a commit that did not happen


def test_a_kept_refusal_keeps_exactly_its_writes(app, client, probe, db_snapshot):
    from audit.schema import audit_events

    before = db_snapshot()
    assert client.post("/probe/kept").status_code == 403
    after = db_snapshot()
    assert after.pop("audit_events") == before.pop("audit_events") + 1
    assert after.pop("audit_head")[0] == before.pop("audit_head")[0] + 1
    assert after == before  # no other table gained a row
    assert failed_attempts(app) == 1
    with app.extensions["qms"].db.engine.connect() as connection:
        last = connection.execute(select(audit_events.c.action, audit_events.c.canonical)
                                  .order_by(audit_events.c.seq.desc()).limit(1)).one()
    assert last.action == "identity.login.failed" and '"purpose":"probe"' in last.canonical
    assert probe == [committed_seq(app)]  # a kept refusal is a commit: what waited runs


def test_a_get_never_commits(app, client, probe, db_snapshot):
    before = db_snapshot()
    assert client.get("/probe/ok").status_code == 200
    assert db_snapshot() == before and failed_attempts(app) == 0
    assert probe == []
