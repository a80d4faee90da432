"""`qms jobs`: the one scheduler process (APScheduler 3). Web workers never run jobs, so a
job runs once per schedule however many workers serve requests.

Each job is one transaction (its own commit point) and writes as ``system``; a job that
fails is logged and tried again at its next run, and each is safe to repeat (expired lots
are not expired twice; an overdue item is reported once)."""
from __future__ import annotations

import functools
import logging
from pathlib import Path

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import current_app

from audit.checkpoints import write_checkpoint
from qms.capa.jobs import report_overdue_capa
from qms.chain_checks.service import check_chain
from qms.context import state
from qms.erp import delivery, wake
from qms.identity.unknown_users import close_ended_intervals
from qms.materials.holds import expire_lots
from qms.settings import site_today

log = logging.getLogger("qms.jobs")


def write_scheduled_checkpoint(app) -> None:
    """One signed checkpoint of the audit chain head, in its own transaction."""
    with app.app_context():
        app_state = state()
        with app_state.db.unit_of_work() as session:
            written = write_checkpoint(session, signing_key=app_state.audit_signing_key(),
                                       file_path=app_state.checkpoint_file,
                                       site=app_state.audit_site(), actor="system",
                                       public_keys=app_state.audit_public_keys())
        log.info("audit checkpoint %s", f"at seq {written.seq}" if written else "skipped (empty)")


def verify_chain_on_schedule(app) -> None:
    """Verify the whole audit chain and record the outcome for the audit page."""
    with app.app_context():
        check = check_chain(state().db)
    if check.verdict == "BROKEN":
        log.error("audit chain BROKEN at seq %s: %s", check.first_bad_seq, check.problem)
    else:
        log.info("audit chain %s: %d events", check.verdict, check.events_checked)


def expire_due_lots(app) -> list[str]:
    """Lots past their expiry date (a calendar day at the site) become expired."""
    expired = _by_site_day(app, expire_lots)
    log.info("lot expiry: %d lot(s) expired %s", len(expired), ", ".join(expired))
    return expired


def report_overdue(app) -> list[dict]:
    """CAPA actions and effectiveness checks past due: one audit event each, once."""
    reported = _by_site_day(app, report_overdue_capa)
    log.info("CAPA overdue: %d new overdue item(s)", len(reported))
    return reported


def total_unknown_user_failures(app) -> int:
    """One audit event with the total of every ended interval of failed checks at unknown
    usernames (qms.identity.unknown_users); an interval is closed once."""
    with app.app_context():
        app_state = state()
        with app_state.db.unit_of_work() as session:
            closed = close_ended_intervals(
                session, interval=app_state.security.throttle.unknown_user_interval)
    log.info("unknown-user failures: %d interval total(s) audited", len(closed))
    return len(closed)


def _by_site_day(app, job):
    """Run ``job(session, today)`` in its own transaction, today being the site's day."""
    with app.app_context():
        with state().db.unit_of_work() as session:
            return job(session, site_today(app.config))


def deliver_erp_events(app, channels: list) -> None:
    """One delivery pass over every channel (skipped while `qms erp deliver` runs)."""
    with app.app_context():
        try:
            with delivery.delivery_lock(Path(app.instance_path)):
                report = delivery.deliver_pass(state().db, channels,
                                               delivery.policy_from_settings(app.config))
        except delivery.DeliveryBusy:
            log.info("ERP delivery: another process is delivering; skipped")
            return
    if report.delivered or report.failed or report.parked:
        log.info("ERP delivery: delivered %s, failed %s, parked %s", report.delivered,
                 report.failed, report.parked)


def build_scheduler(app) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone="UTC")
    jobs = ((write_scheduled_checkpoint, "audit-checkpoint", "AUDIT_CHECKPOINT_INTERVAL_MINUTES"),
            (verify_chain_on_schedule, "audit-verification", "AUDIT_VERIFY_INTERVAL_MINUTES"),
            (expire_due_lots, "lot-expiry", "JOBS_LOT_EXPIRY_INTERVAL_MINUTES"),
            (report_overdue, "capa-overdue", "JOBS_CAPA_OVERDUE_INTERVAL_MINUTES"),
            (total_unknown_user_failures, "unknown-user-totals",
             "RATELIMIT_UNKNOWN_USER_AUDIT_MINUTES"))
    for job, job_id, interval in jobs:
        scheduler.add_job(job, "interval", minutes=app.config[interval], args=[app],
                          id=job_id, max_instances=1, coalesce=True)
    channels = delivery.channels_from_settings(app.config, Path(app.instance_path))
    if channels:  # at once when a commit wakes it (qms.erp.wake), else on the poll
        wake.schedule_delivery(
            scheduler, db=app.extensions["qms"].db, instance=Path(app.instance_path),
            deliver_pass=functools.partial(deliver_erp_events, app, channels),
            poll_seconds=app.config["ERP_POLL_SECONDS"])
    return scheduler


def run_scheduler() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = current_app._get_current_object()
    # catch up at start-up (a scheduler that was down owes these), then on the interval
    expire_due_lots(app)
    report_overdue(app)
    total_unknown_user_failures(app)
    write_scheduled_checkpoint(app)
    verify_chain_on_schedule(app)
    build_scheduler(app).start()
