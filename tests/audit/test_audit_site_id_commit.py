"""`qms audit set-site-id` writes the instance's site id file before its one commit (the
command's unit of work): when that commit fails, the file is put back, so that the file and
the audit trail never disagree about the site."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.conftest import PASSWORD

REASON = "validation copy of production, restored 2026-05-04 (CC-2026-0042)"


def test_a_failed_commit_puts_the_site_id_file_back(app, make_user, monkeypatch, db_snapshot):
    make_user("ada.admin", "admin")
    site_file = Path(app.instance_path) / "site_id"
    production = site_file.read_text()
    before = db_snapshot()

    def failing_commit(session):
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(Session, "commit", failing_commit)
    result = app.test_cli_runner().invoke(
        args=["audit", "set-site-id", "site-copy", "--reason", REASON],
        env={"QMS_OPERATOR": "ada.admin", "QMS_OPERATOR_PASSWORD": PASSWORD})
    monkeypatch.undo()
    assert result.exit_code != 0 and isinstance(result.exception, OperationalError)
    assert site_file.read_text() == production
    assert db_snapshot() == before
