"""`qms erp ...`: deliver the outbox once, see where deliveries stand, requeue parked ones."""
from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from qms.cli import administer, fail
from qms.context import state
from qms.erp import delivery, webhook

erp_group = AppGroup("erp", help="ERP export: delivery of release decisions and lot statuses.")


def configured_channels() -> list[delivery.Channel]:
    try:
        return delivery.channels_from_settings(current_app.config,
                                               Path(current_app.instance_path))
    except ValueError as error:
        fail(f"ERP configuration: {error}")


@erp_group.command("deliver")
def deliver() -> None:
    """Deliver every event that is due on every configured channel, then stop (at least
    once; the scheduler in `qms jobs` does the same every few seconds)."""
    channels = configured_channels()
    if not channels:
        fail("no ERP channel is configured ([erp] file_drop_folder or webhooks)")
    try:
        with delivery.delivery_lock(Path(current_app.instance_path)):
            report = delivery.deliver_until_idle(state().db, channels,
                                                 delivery.policy_from_settings(current_app.config))
    except delivery.DeliveryBusy as busy:
        fail(str(busy))
    for channel in channels:
        click.echo(f"{channel.name}: {report.delivered.get(channel.name, 0)} delivered, "
                   f"{report.failed.get(channel.name, 0)} failed (will retry), "
                   f"{report.parked.get(channel.name, 0)} parked")


@erp_group.command("status")
def status() -> None:
    """Pending, delivered and parked events per channel, and the parked ones with their last
    error."""
    with state().db.reading() as session:
        counts = delivery.delivery_status(session)
        parked = delivery.parked_events(session)
    for channel, by_state in sorted(counts.items()):
        click.echo(f"{channel}: " + ", ".join(f"{n} {s}" for s, n in by_state.items()))
    for entry in parked:
        click.echo("parked " + json.dumps(entry, ensure_ascii=False))


@erp_group.command("redeliver")
@click.option("--channel", required=True, help="file, or webhook:<name>")
@click.option("--event", "event_ids", multiple=True, help="An event id; repeat for several. "
              "Without it, every parked event of the channel.")
@click.option("--reason", required=True, help="Why (recorded in the audit trail).")
def redeliver(channel: str, event_ids: tuple[str, ...], reason: str) -> None:
    """Put parked events back in the queue with a fresh attempt count, as the authenticated
    administrator (permission erp.manage)."""
    known = {c.name for c in configured_channels()}
    if channel not in known:
        fail(f"no configured channel {channel!r}; configured: {', '.join(sorted(known)) or 'none'}")
    count = administer("erp.manage", lambda session, operator: delivery.requeue(
        session, channel, list(event_ids) or None, reason, actor=operator.username))
    click.echo(f"{count} event(s) queued again on {channel}")


@erp_group.command("new-secret")
def new_secret() -> None:
    """Print a fresh webhook signing secret (whsec_...) for a [[erp.webhooks]] entry."""
    click.echo(webhook.new_secret())
