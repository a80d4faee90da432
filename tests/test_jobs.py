"""`qms jobs`: the scheduler process and its audit checkpoint job."""
from __future__ import annotations

import json
from datetime import timedelta

from audit import trail
from audit.checkpoints import list_checkpoints
from qms.jobs import build_scheduler, write_scheduled_checkpoint


def test_every_job_runs_on_its_configured_interval(app):
    app.config.update(AUDIT_CHECKPOINT_INTERVAL_MINUTES=7, JOBS_LOT_EXPIRY_INTERVAL_MINUTES=11,
                      JOBS_CAPA_OVERDUE_INTERVAL_MINUTES=13)
    jobs = {job.id: job for job in build_scheduler(app).get_jobs()}
    assert {name: job.trigger.interval for name, job in jobs.items()} == {
        "audit-checkpoint": timedelta(minutes=7), "lot-expiry": timedelta(minutes=11),
        "capa-overdue": timedelta(minutes=13)}
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
