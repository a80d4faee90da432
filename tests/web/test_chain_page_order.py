"""The audit page's recorded verification cannot hide a finding: a slow check that began
before a later one does not replace it, and a row dated in the future (written outside the
application) raises the alarm instead of keeping an old verdict on the page."""
from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import update

from audit.guards import drop_guards
from audit.schema import audit_events
from qms.chain_checks import service as chain_service
from qms.chain_checks.models import ChainCheck
from qms.context import state
from qms.db import utcnow
from tests.web.test_web_pages import add_events, auditor, sample_events, verify_now  # noqa: F401


def _tamper(owner_engine, events, *, guards_dropped=False):
    seq = events(action="capa.record.created")[0].seq
    with owner_engine.begin() as connection:
        if not guards_dropped:
            drop_guards(connection)
        connection.execute(update(audit_events).where(audit_events.c.seq == seq)
                           .values(actor="mallory"))
    return seq


def test_a_slow_scheduler_check_that_began_before_the_tampering_hides_a_later_broken_one(
        app, client, sample_events, events, owner_engine, verify_now):
    """The scheduler's verification reads the chain (seconds on a long trail) before the
    tampering and records INTACT after a "Verify now" that found it BROKEN: the page shows
    the verification that began last, the BROKEN one."""
    from qms.jobs import write_scheduled_checkpoint

    write_scheduled_checkpoint(app)
    with owner_engine.begin() as connection:  # the attacker prepares (PostgreSQL: DDL waits
        drop_guards(connection)               # for readers, so before the walk begins)
    real = chain_service.verify_trail
    read, go_on = threading.Event(), threading.Event()
    scheduler_thread = []

    def slow_verify(session):
        result = real(session)
        if threading.current_thread() in scheduler_thread:
            read.set()
            go_on.wait(30)  # the rest of a long walk
        return result

    chain_service.verify_trail = slow_verify
    try:
        def scheduler():
            with app.app_context():
                chain_service.check_chain(state().db)
        thread = threading.Thread(target=scheduler)
        scheduler_thread.append(thread)
        thread.start()
        assert read.wait(30)
        seq = _tamper(owner_engine, events, guards_dropped=True)
        page = verify_now().text
        assert f"Audit chain BROKEN at seq {seq}" in page  # the fresh check found it
        go_on.set()
        thread.join(30)
    finally:
        chain_service.verify_trail = real
    page = client.get("/audit").text
    assert f"BROKEN at seq {seq}" in page, "the page shows INTACT although the newest " \
        "snapshot verified is BROKEN"


def test_a_future_dated_intact_row_raises_the_alarm(
        app, client, sample_events, events, owner_engine, verify_now):
    """The application role may INSERT into audit_chain_checks: whoever can tamper with the
    trail adds an INTACT row dated in the future. The page says the record was tampered
    with, and shows the verification that began last before now (BROKEN)."""
    from qms.jobs import verify_chain_on_schedule, write_scheduled_checkpoint

    write_scheduled_checkpoint(app)
    with app.app_context(), state().db.unit_of_work() as session:  # the application role
        session.add(ChainCheck(started_at=utcnow() + timedelta(days=30),
                               finished_at=utcnow() + timedelta(days=30), requested_by=None,
                               verdict="INTACT", events_checked=4, checkpoints_checked=1,
                               head_seq=4, head_hash="0" * 64))
    seq = _tamper(owner_engine, events)
    verify_chain_on_schedule(app)
    page = verify_now().text
    assert f"BROKEN at seq {seq}" in page and "Audit chain intact" not in page
    assert "The record of audit chain verifications was tampered with" in page
