"""`qms jobs`: the one scheduler process (APScheduler 3). Web workers never run jobs, so a
job runs once per schedule however many workers serve requests."""
from __future__ import annotations

import logging

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import current_app

from audit.checkpoints import write_checkpoint
from qms.context import state

log = logging.getLogger("qms.jobs")


def write_scheduled_checkpoint(app) -> None:
    """One signed checkpoint of the audit chain head, in its own transaction."""
    with app.app_context():
        app_state = state()
        with app_state.db.unit_of_work() as session:
            written = write_checkpoint(session, signing_key=app_state.audit_signing_key(),
                                       file_path=app_state.checkpoint_file, actor="system")
        log.info("audit checkpoint %s", f"at seq {written.seq}" if written else "skipped (empty)")


def build_scheduler(app) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone="UTC")
    minutes = app.config["AUDIT_CHECKPOINT_INTERVAL_MINUTES"]
    scheduler.add_job(write_scheduled_checkpoint, "interval", minutes=minutes, args=[app],
                      id="audit-checkpoint", max_instances=1, coalesce=True)
    return scheduler


def run_scheduler() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = current_app._get_current_object()
    write_scheduled_checkpoint(app)  # anchor the head at start-up, then on the interval
    build_scheduler(app).start()
