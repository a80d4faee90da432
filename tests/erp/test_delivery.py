"""Delivery of the outbox to a real HTTP receiver and to a file-drop folder: at least once,
in order per lot, every attempt audited; a receiver that is down, failing or hanging gets
everything in the end; a process that dies between sending and recording sends again."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from qms.db import utcnow
from qms.erp import delivery
from qms.erp.models import ErpDelivery, ErpEvent
from qms.erp.outbox import write_event
from qms.errors import InvalidInput
from qms.materials.models import Lot
from tests.erp.test_b2mml import SCHEMAS
from tests.materials.support import audit_events_after

ROOT = Path(__file__).resolve().parents[2]
FAST = delivery.RetryPolicy(max_attempts=4, base_seconds=0.01, cap_seconds=0.02)


def _lots_with_events(plant, count: int) -> list[str]:
    """Lots each with two events in order: released, then rejected."""
    lots = [plant.received("RM-API") for _ in range(count)]
    for lot in lots:
        plant.ok(plant.transition(plant.team.approver, f"/lots/{lot}", "reject",
                                  meaning="rejected", reason="recall"))
    return lots


def _events(app) -> list[dict]:
    with app.extensions["qms"].db.engine.connect() as connection:
        return [json.loads(p) for p in connection.scalars(
            select(ErpEvent.payload).order_by(ErpEvent.seq))]


def _later(minutes: int):
    return lambda: utcnow() + timedelta(minutes=minutes)


def test_a_receiver_that_is_down_failing_and_hanging_gets_every_event_in_order(
        app, plant, receiver, chain_intact):
    lots = _lots_with_events(plant, 3)
    db = app.extensions["qms"].db
    channel = delivery.webhook_channel("sap", receiver.url, receiver.secret, timeout=0.3)
    rng = random.Random(7)
    clock = iter(range(0, 10_000, 5))  # each pass a few minutes later: every retry is due

    def run(mode: str):
        receiver.mode = mode
        return delivery.deliver_pass(db, [channel], FAST, rng=rng, now=_later(next(clock)))

    down = run("down")
    assert down.failed == {"webhook:sap": 3}  # one per lot: later events of a lot wait
    erroring = run("error")
    hanging = run("hang")
    assert erroring.failed == hanging.failed == {"webhook:sap": 3}
    receiver.mode = "accept"
    report = delivery.deliver_until_idle(db, [channel], FAST, rng=rng, now=_later(60))
    assert report.delivered == {"webhook:sap": 6}

    events = _events(app)
    assert receiver.unique_ids() == [e["event_id"] for e in events]  # seq order, once each
    assert all(eid == payload["event_id"] for eid, payload in receiver.received)
    for lot in lots:
        arrived = [p["status"] for _, p in receiver.received if p["lot"] == lot]
        assert arrived == ["released", "rejected"]
    actions = [a for a, *_ in audit_events_after(app)]
    assert actions.count("erp.message.failed") == 9
    assert actions.count("erp.message.delivered") == 6
    assert chain_intact()


def test_a_failing_receiver_parks_the_event_until_it_is_queued_again(app, plant, receiver):
    lot = plant.received("RM-API")
    db = app.extensions["qms"].db
    channel = delivery.webhook_channel("sap", receiver.url, receiver.secret, timeout=0.3)
    receiver.mode = "error"
    for minutes in range(FAST.max_attempts):
        delivery.deliver_pass(db, [channel], FAST, now=_later(minutes * 10))
    with db.reading() as session:
        parked = delivery.parked_events(session)
        assert [(p["lot"], p["attempts"]) for p in parked] == [(lot, FAST.max_attempts)]
        assert "HTTP 500" in parked[0]["last_error"]
    receiver.mode = "accept"
    assert delivery.deliver_pass(db, [channel], FAST, now=_later(600)).delivered == {}
    with db.unit_of_work() as session:
        assert delivery.requeue(session, "webhook:sap", None, "receiver fixed") == 1
    assert delivery.deliver_pass(db, [channel], FAST).delivered == {"webhook:sap": 1}
    assert "erp.message.requeued" in [a for a, *_ in audit_events_after(app)]


class Crash(BaseException):
    """The process dying: not an Exception, so nothing on the way catches it."""


def test_a_process_killed_after_sending_sends_again_and_loses_nothing(app, plant, receiver):
    _lots_with_events(plant, 2)
    db = app.extensions["qms"].db
    real = delivery.webhook_channel("sap", receiver.url, receiver.secret, timeout=1)
    sent = []

    def send_then_die(event):
        attempt = real.send(event)
        sent.append(event.event_id)
        if len(sent) == 2:
            raise Crash  # after the second POST, before its outcome is recorded
        return attempt
    with pytest.raises(Crash):
        delivery.deliver_pass(db, [delivery.Channel(real.name, send_then_die)], FAST)
    with db.reading() as session:
        assert session.scalar(select(ErpDelivery.state).limit(1)) == "pending"

    delivery.deliver_until_idle(db, [real], FAST)
    events = [e["event_id"] for e in _events(app)]
    assert [eid for eid, _ in receiver.received][:2] == events[:2]  # sent before the crash
    assert receiver.unique_ids() == events  # and all again, once each after deduplication
    assert len(receiver.received) > len(events)


def test_the_file_drop_writes_json_and_valid_b2mml_named_in_event_order(app, plant, tmp_path):
    lots = _lots_with_events(plant, 2)
    folder = tmp_path / "drop"
    db = app.extensions["qms"].db
    report = delivery.deliver_until_idle(db, [delivery.file_drop(folder)], FAST)
    assert report.delivered == {"file": 4}
    names = sorted(p.name for p in folder.iterdir())
    events = _events(app)
    assert names == sorted(f"{e['sequence']:012d}-{e['event_id']}.{kind}"
                           for e in events for kind in ("json", "xml"))
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "B2MML-Material.xsd")))
    for event in events:
        stem = folder / f"{event['sequence']:012d}-{event['event_id']}"
        assert json.loads(stem.with_suffix(".json").read_text("utf-8")) == event
        document = etree.parse(str(stem.with_suffix(".xml")))
        assert schema.validate(document), schema.error_log
    assert [json.loads((folder / n).read_text())["lot"] for n in names
            if n.endswith(".json")] == [lots[0], lots[1], lots[0], lots[1]]
    # nothing more to do: a second run writes nothing again
    assert delivery.deliver_until_idle(db, [delivery.file_drop(folder)], FAST).delivered == {}


def test_an_unwritable_folder_is_a_failed_attempt_not_a_crash(app, plant, tmp_path):
    plant.received("RM-API")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    db = app.extensions["qms"].db
    report = delivery.deliver_pass(db, [delivery.file_drop(blocker / "drop")], FAST)
    assert report.failed == {"file": 1}
    with db.reading() as session:
        row = session.scalar(select(ErpDelivery))
        assert row.state == "pending" and row.attempts == 1 and "Error" in row.last_error


def test_webhook_configuration_is_checked(tmp_path):
    settings = {"ERP_FILE_DROP_FOLDER": "", "ERP_WEBHOOK_TIMEOUT_SECONDS": 5,
                "ERP_WEBHOOKS": [{"name": "sap", "url": "http://127.0.0.1:9/x",
                                  "secret": "whsec_" + "A" * 44}]}
    assert [c.name for c in delivery.channels_from_settings(settings, tmp_path)] == \
        ["webhook:sap"]
    for bad in ({"name": "sap", "url": "file:///etc/passwd", "secret": "whsec_" + "A" * 44},
                {"name": "s a p", "url": "http://x/", "secret": "whsec_" + "A" * 44},
                {"name": "sap", "url": "http://x/", "secret": "plain"},
                {"name": "sap", "url": "http://x/"}):
        with pytest.raises(ValueError):
            delivery.channels_from_settings({**settings, "ERP_WEBHOOKS": [bad]}, tmp_path)


def test_a_failed_event_holds_back_the_later_events_of_its_lot_only(app, plant):
    first, second = _lots_with_events(plant, 2)
    db = app.extensions["qms"].db
    arrived, refuse = [], {(first, "released")}  # only the first event of the first lot
    minutes = delivery.RetryPolicy(max_attempts=4, base_seconds=60, cap_seconds=120)

    def send(event):
        status = json.loads(event.payload)["status"]
        if (event.lot, status) in refuse:
            return delivery.Attempt(False, "refused for the test")
        arrived.append((event.lot, status))
        return delivery.Attempt(True)
    channel = delivery.Channel("webhook:test", send)

    delivery.deliver_pass(db, [channel], minutes, rng=random.Random(1))
    assert arrived == [(second, "released"), (second, "rejected")]
    refuse.clear()
    delivery.deliver_pass(db, [channel], minutes)  # the retry is not due yet
    assert arrived == [(second, "released"), (second, "rejected")]
    delivery.deliver_pass(db, [channel], minutes, now=_later(60))
    assert arrived[2:] == [(first, "released"), (first, "rejected")]


def test_an_administrator_sees_parked_events_and_queues_them_again(app, plant, receiver,
                                                                   make_user, db_snapshot):
    lot = plant.received("RM-API")
    db = app.extensions["qms"].db
    channel = delivery.webhook_channel("sap", receiver.url, receiver.secret, timeout=0.3)
    receiver.mode = "error"
    for minutes in range(FAST.max_attempts):
        delivery.deliver_pass(db, [channel], FAST, now=_later(minutes * 10))
    admin = make_user("ada.admin", "admin")
    seen = plant.ok(plant.get(admin, "/erp/deliveries"))
    assert seen["channels"]["webhook:sap"] == {"pending": 0, "delivered": 0, "parked": 1}
    assert [(p["lot"], p["attempts"]) for p in seen["parked"]] == [(lot, FAST.max_attempts)]
    assert plant.get(plant.team.approver, "/erp/deliveries").status_code == 403

    before = db_snapshot()
    for body in ({"channel": "webhook:sap"}, {"channel": "webhook:sap", "reason": "",
                                              "event_ids": []}):
        assert plant.post(admin, "/erp/deliveries/redeliver", body).status_code == 422
    assert plant.post(admin, "/erp/deliveries/redeliver",
                      {"channel": "webhook:nope", "reason": "x"}).status_code == 404
    assert db_snapshot() == before
    queued = plant.ok(plant.post(admin, "/erp/deliveries/redeliver",
                                 {"channel": "webhook:sap", "reason": "receiver fixed"}))
    assert queued == {"queued": 1}
    receiver.mode = "accept"
    assert delivery.deliver_pass(db, [channel], FAST).delivered == {"webhook:sap": 1}
    requeued = [e for e in audit_events_after(app) if e[0] == "erp.message.requeued"]
    assert requeued == [("erp.message.requeued", "ada.admin", lot, "receiver fixed")]


def test_a_delivery_process_killed_with_sigkill_resends_on_restart(app, app_config, plant,
                                                                   receiver, tmp_path):
    """A real `qms erp deliver` process killed (SIGKILL) in the middle of a pass: whatever
    it sent but had not recorded is sent again by the next run; every event arrives."""
    with app.extensions["qms"].db.unit_of_work() as session:
        lot = session.scalar(select(Lot).where(Lot.number == plant.received("RM-API")))
        for _ in range(119):
            write_event(session, "lot.status_changed", lot, actor="system")
    expected = [e["event_id"] for e in _events(app)]
    config = tmp_path / "site.toml"
    config.write_text(f'[erp]\nwebhooks = [{{name = "sap", url = "{receiver.url}", '
                      f'secret = "{receiver.secret}"}}]\n', encoding="utf-8")
    env = {"PATH": os.environ["PATH"], "QMS_CONFIG": str(config),
           "QMS_INSTANCE_PATH": app_config["INSTANCE_PATH"],
           "QMS_DATABASE_URL": app_config["DATABASE_URL"], "QMS_APP_SECRET_KEY": "k" * 40}
    command = [sys.executable, "-m", "qms", "erp", "deliver"]
    receiver.accept_delay = 0.02  # a batch of 50 sends takes about a second
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while len(receiver.received) < 70:  # into the second batch: sent, not yet recorded
        assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
        time.sleep(0.01)
    process.kill()
    process.wait()
    receiver.accept_delay = 0.0
    rerun = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert receiver.unique_ids() == expected  # every event, in order, once after dedup
    assert len(receiver.received) > len(expected)  # the unrecorded ones went again


def test_a_send_that_raises_is_a_failed_attempt_and_the_other_channels_go_on(app, plant,
                                                                            tmp_path):
    plant.received("RM-API")
    db = app.extensions["qms"].db

    def broken(event):
        raise ValueError("text that XML cannot hold")
    report = delivery.deliver_pass(db, [delivery.Channel("webhook:broken", broken),
                                        delivery.file_drop(tmp_path / "drop")], FAST)
    assert report.failed == {"webhook:broken": 1} and report.delivered == {"file": 1}
    with db.reading() as session:
        row = session.get(ErpDelivery, ("webhook:broken", 1))
        assert (row.state, row.attempts) == ("pending", 1)
        assert row.last_error == "ValueError: text that XML cannot hold"


def test_parked_events_do_not_hide_the_events_of_newer_lots(app, plant, monkeypatch):
    monkeypatch.setattr(delivery, "PASS_SIZE", 2)
    old = [plant.received("RM-API") for _ in range(3)]
    db = app.extensions["qms"].db
    outcome = {"ok": False}
    channel = delivery.Channel("webhook:test", lambda event: delivery.Attempt(
        outcome["ok"], None if outcome["ok"] else "down"))
    once = delivery.RetryPolicy(max_attempts=1, base_seconds=1, cap_seconds=1)
    delivery.deliver_until_idle(db, [channel], once)
    delivery.deliver_until_idle(db, [channel], once)
    with db.reading() as session:
        assert {p["lot"] for p in delivery.parked_events(session)} == set(old)
    new = plant.received("RM-API")
    outcome["ok"] = True
    assert delivery.deliver_until_idle(db, [channel], once).delivered == {"webhook:test": 1}
    with db.reading() as session:
        assert session.scalar(select(ErpEvent.lot).join(
            ErpDelivery, ErpDelivery.event_seq == ErpEvent.seq).where(
            ErpDelivery.state == "delivered")) == new


def test_dropped_files_are_readable_by_the_consuming_account(app, plant, tmp_path):
    plant.received("RM-API")
    folder = tmp_path / "drop"
    delivery.deliver_pass(app.extensions["qms"].db, [delivery.file_drop(folder)], FAST)
    assert {path.stat().st_mode & 0o777 for path in folder.iterdir()} == {0o644}


def test_two_secrets_while_rotating_sign_every_request_twice(app, plant, receiver, tmp_path):
    plant.received("RM-API")
    settings = {"ERP_FILE_DROP_FOLDER": "", "ERP_WEBHOOK_TIMEOUT_SECONDS": 5,
                "ERP_WEBHOOKS": [{"name": "sap", "url": receiver.url,
                                  "secret": [receiver.secret, "whsec_" + "B" * 44]}]}
    channels = delivery.channels_from_settings(settings, tmp_path)
    delivery.deliver_pass(app.extensions["qms"].db, channels, FAST)
    (event_id, _), = receiver.received
    assert len(receiver.deliveries[0].headers["webhook-signature"].split()) == 2


def test_a_webhook_url_with_a_password_is_refused_without_repeating_it(tmp_path):
    settings = {"ERP_FILE_DROP_FOLDER": "", "ERP_WEBHOOK_TIMEOUT_SECONDS": 5,
                "ERP_WEBHOOKS": [{"name": "sap", "url": "https://feed:hunter2@erp.example/x",
                                  "secret": "whsec_" + "A" * 44}]}
    with pytest.raises(ValueError) as refused:
        delivery.channels_from_settings(settings, tmp_path)
    assert "user name or password" in str(refused.value) and "hunter2" not in str(refused.value)


def test_a_requeue_needs_a_real_reason(app, plant):
    plant.received("RM-API")
    with app.extensions["qms"].db.unit_of_work() as session:
        delivery.queue_new_events(session, "file")
    with pytest.raises(InvalidInput) as refused:
        with app.extensions["qms"].db.unit_of_work() as session:
            delivery.requeue(session, "file", None, "   ")
    assert list(refused.value.errors) == ["reason"]
