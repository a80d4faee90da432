"""`qms erp ...` and the scheduled delivery: configuration checked, one delivering process,
parked events listed and queued again with a reason."""
from __future__ import annotations

from pathlib import Path

from qms.erp import delivery
from qms.jobs import build_scheduler, deliver_erp_events
from tests.conftest import PASSWORD
from tests.materials.support import audit_events_after

OPERATOR = {"QMS_OPERATOR": "ada.admin", "QMS_OPERATOR_PASSWORD": PASSWORD}


def _cli(app, *args, env=None):
    return app.test_cli_runner().invoke(args=["erp", *args], env=env)


def test_deliver_needs_a_channel_and_then_delivers(app, plant, tmp_path):
    plant.received("RM-API")
    refused = _cli(app, "deliver")
    assert refused.exit_code == 1 and "no ERP channel is configured" in refused.output
    app.config["ERP_FILE_DROP_FOLDER"] = str(tmp_path / "drop")
    done = _cli(app, "deliver")
    assert done.exit_code == 0, done.output
    assert "file: 1 delivered, 0 failed (will retry), 0 parked" in done.output
    assert len(list((tmp_path / "drop").glob("*.json"))) == 1
    status = _cli(app, "status")
    assert "file: 0 pending, 1 delivered, 0 parked" in status.output


def test_one_delivering_process_at_a_time(app, plant, tmp_path):
    plant.received("RM-API")
    app.config["ERP_FILE_DROP_FOLDER"] = str(tmp_path / "drop")
    with delivery.delivery_lock(Path(app.instance_path)):
        busy = _cli(app, "deliver")
        assert busy.exit_code == 1 and "another process" in busy.output
        channels = delivery.channels_from_settings(app.config, Path(app.instance_path))
        deliver_erp_events(app, channels)  # the scheduler skips its turn
    assert not (tmp_path / "drop").exists()
    deliver_erp_events(app, channels)
    assert len(list((tmp_path / "drop").glob("*.json"))) == 1


def test_parked_events_are_listed_and_queued_again_with_a_reason(app, plant, tmp_path,
                                                                make_user):
    make_user("ada.admin", "admin")
    lot = plant.received("RM-API")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    app.config.update(ERP_FILE_DROP_FOLDER=str(blocker / "drop"), ERP_MAX_ATTEMPTS=1)
    assert _cli(app, "deliver").exit_code == 0
    status = _cli(app, "status").output
    assert "1 parked" in status and lot in status
    assert _cli(app, "redeliver", "--channel", "webhook:nope", "--reason", "x").exit_code == 1
    assert _cli(app, "redeliver", "--channel", "file").exit_code == 2  # --reason required
    unknown = _cli(app, "redeliver", "--channel", "file", "--event", "0" * 36, "--reason", "x",
                   env=OPERATOR)
    assert unknown.exit_code == 1 and "no such event" in unknown.output
    blocker.unlink()
    anonymous = _cli(app, "redeliver", "--channel", "file", "--reason", "share remounted",
                     env={"QMS_OPERATOR": "paul.production", "QMS_OPERATOR_PASSWORD": PASSWORD})
    assert anonymous.exit_code == 1 and "'erp.manage' is required" in anonymous.output
    again = _cli(app, "redeliver", "--channel", "file", "--reason", "share remounted",
                 env=OPERATOR)
    assert again.exit_code == 0 and "1 event(s) queued again on file" in again.output
    requeued = [e for e in audit_events_after(app) if e[0] == "erp.message.requeued"]
    assert requeued == [("erp.message.requeued", "ada.admin", lot, "share remounted")]
    assert _cli(app, "deliver").exit_code == 0
    assert [p.name.endswith(".json") for p in (blocker / "drop").glob("*.json")] == [True]


def test_bad_webhook_configuration_is_a_clear_error(app):
    app.config["ERP_WEBHOOKS"] = [{"name": "sap", "url": "ftp://erp/", "secret": "whsec_AA=="}]
    result = _cli(app, "deliver")
    assert result.exit_code == 1 and "ERP configuration" in result.output


def test_the_scheduler_delivers_every_poll_when_a_channel_is_configured(app, tmp_path):
    assert "erp-delivery" not in {job.id for job in build_scheduler(app).get_jobs()}
    app.config.update(ERP_FILE_DROP_FOLDER=str(tmp_path), ERP_POLL_SECONDS=3)
    job = next(j for j in build_scheduler(app).get_jobs() if j.id == "erp-delivery")
    assert job.trigger.interval.total_seconds() == 3
    # one run at a time; a run woken by a commit is never dropped for starting late
    assert job.max_instances == 1 and job.coalesce and job.misfire_grace_time is None


def test_new_secret_prints_a_standard_webhooks_secret(app):
    result = _cli(app, "new-secret")
    assert result.exit_code == 0 and result.output.startswith("whsec_")
