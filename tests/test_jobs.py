"""`qms jobs`: the scheduler process and its audit checkpoint job."""
from __future__ import annotations

import json
from datetime import timedelta

from audit import trail
from audit.checkpoints import list_checkpoints
from qms.jobs import build_scheduler, write_scheduled_checkpoint


def test_every_job_runs_on_its_configured_interval(app):
    app.config.update(AUDIT_CHECKPOINT_INTERVAL_MINUTES=7, JOBS_LOT_EXPIRY_INTERVAL_MINUTES=11,
                      JOBS_CAPA_OVERDUE_INTERVAL_MINUTES=13,
                      RATELIMIT_UNKNOWN_USER_AUDIT_MINUTES=17, AUDIT_VERIFY_INTERVAL_MINUTES=19)
    jobs = {job.id: job for job in build_scheduler(app).get_jobs()}
    assert {name: job.trigger.interval for name, job in jobs.items()} == {
        "audit-checkpoint": timedelta(minutes=7), "lot-expiry": timedelta(minutes=11),
        "capa-overdue": timedelta(minutes=13), "unknown-user-totals": timedelta(minutes=17),
        "audit-verification": timedelta(minutes=19)}
    assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())


def test_scheduled_checkpoint_is_signed_stored_filed_and_audited(app, make_user):
    make_user("someone", "auditor")
    write_scheduled_checkpoint(app)
    state = app.extensions["qms"]
    with state.db.engine.connect() as connection:
        [checkpoint] = list_checkpoints(connection)
        [event] = trail.query_events(connection, action="audit.checkpoint.signed")
    assert event.actor == "system" and event.data["seq"] == checkpoint.seq
    [line] = state.checkpoint_file.read_text().splitlines()
    assert json.loads(line)["checkpoint"]["hash"] == checkpoint.hash


def test_an_empty_trail_gets_no_checkpoint(app):
    write_scheduled_checkpoint(app)
    with app.extensions["qms"].db.engine.connect() as connection:
        assert list_checkpoints(connection) == []


def _set_past(app, statement: str) -> None:
    # test set-up: move a date into the past, straight in the table (nothing else changes)
    from sqlalchemy import text

    with app.extensions["qms"].db.engine.begin() as connection:
        connection.execute(text(statement))


def test_the_scheduled_jobs_expire_lots_and_report_overdue_capa_once(app):
    """The jobs as the scheduler runs them: their own transaction, as `system`, by the
    site's calendar day; a second run finds nothing new."""
    from qms.demo import create_demo_data
    from qms.jobs import expire_due_lots, report_overdue

    with app.app_context():
        create_demo_data()
    _set_past(app, "UPDATE lots SET expires_on = '2020-01-01' WHERE state = 'released' "
                   "AND number LIKE 'RM-LAC%'")
    _set_past(app, "UPDATE capa_actions SET due_on = '2020-01-01'")

    expired, reported = expire_due_lots(app), report_overdue(app)
    assert len(expired) == 1 and expired[0].startswith("RM-LAC")
    assert [item["due_on"] for item in reported] == ["2020-01-01"]
    assert expire_due_lots(app) == [] and report_overdue(app) == []

    with app.extensions["qms"].db.engine.connect() as connection:
        events = [(e.action, e.actor) for e in trail.query_events(connection)
                  if e.action in ("lot.status.expired", "capa.action.overdue")]
    assert events == [("lot.status.expired", "system"), ("capa.action.overdue", "system")]


def test_the_scheduled_verification_is_recorded_for_the_audit_page(app, make_user):
    from qms.chain_checks.service import last_check
    from qms.db import utcnow
    from qms.jobs import verify_chain_on_schedule

    make_user("someone", "auditor")
    write_scheduled_checkpoint(app)
    verify_chain_on_schedule(app)
    state = app.extensions["qms"]
    with state.db.reading() as session:
        check = last_check(session, utcnow())
        [head] = trail.query_events(session.connection(), newest_first=True, limit=1)
        assert (check.verdict, check.requested_by) == ("INTACT", None)
        assert (check.head_seq, check.head_hash) == (head.seq, head.hash)
        # the checkpoint counts twice: its database row and its line in the external file
        assert check.events_checked == head.seq and check.checkpoints_checked == 2
        assert check.started_at <= check.finished_at
