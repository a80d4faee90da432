"""The ERP pull feed over HTTP, for service accounts with the ``erp`` role, and the delivery
status for administrators (``erp.manage``)."""
from __future__ import annotations

from flask import Response, g
from sqlalchemy import select

from qms.api import api
from qms.api.spec import endpoint
from qms.context import db_session, state
from qms.erp.delivery import delivery_status, parked_events, requeue
from qms.erp.feed import acknowledge, read_events, record_read
from qms.erp.models import ErpDelivery
from qms.erp.schemas import (AcksIn, AcksOut, DeliveriesOut, DeliveriesQuery, FeedOut,
                             FeedQuery, RedeliverIn, RedeliverOut)
from qms.errors import NotFound


@endpoint(api, "/erp/events", "GET", summary="Read ERP events after a cursor", tag="erp",
          permission="erp.feed", query=FeedQuery, response=FeedOut)
def erp_events_view(query):
    """Events in order (``sequence``), at most ``limit``, after the cursor ``after``; with no
    cursor, from your first unacknowledged event. Keep ``next_cursor`` for the next read;
    acknowledge what you have processed. A read that returns events is audited."""
    consumer = g.api_user.username
    page = read_events(db_session(), consumer, query["after"], query["limit"])
    if page.payloads:  # a GET's session only reads: the audit event gets a writer of its own
        with state().db.unit_of_work() as session:
            record_read(session, consumer, page)
    # the stored payloads are the events' delivered JSON, sent as they are
    return Response(f'{{"events":[{",".join(page.payloads)}],'
                    f'"next_cursor":"{page.next_cursor}"}}', mimetype="application/json")


@endpoint(api, "/erp/acks", "POST", summary="Acknowledge ERP events", tag="erp",
          permission="erp.feed", body=AcksIn, response=AcksOut)
def erp_acks_view(body):
    """Acknowledged events are not offered again to a read without a cursor. Idempotent:
    acknowledging an event twice counts it once."""
    count = acknowledge(db_session(), g.api_user.username, body["event_ids"])
    return {"acknowledged": count}


@endpoint(api, "/erp/deliveries", "GET", summary="Where ERP deliveries stand", tag="erp",
          permission="erp.manage", query=DeliveriesQuery, response=DeliveriesOut)
def erp_deliveries_view(query):
    """Pending, delivered and parked events per channel, and the parked ones (oldest first)
    with their last error: what an administrator acts on."""
    session = db_session()
    return {"channels": delivery_status(session),
            "parked": parked_events(session, query["channel"], query["limit"])}


@endpoint(api, "/erp/deliveries/redeliver", "POST", summary="Queue parked ERP events again",
          tag="erp", permission="erp.manage", body=RedeliverIn, response=RedeliverOut,
          errors=(404,))
def erp_redeliver_view(body):
    """Every parked event of the channel, or the events named, back in the queue with a
    fresh attempt count; audited with the reason."""
    if not db_session().scalar(select(ErpDelivery.channel).where(
            ErpDelivery.channel == body["channel"]).limit(1)):
        raise NotFound(f"no deliveries on channel {body['channel']!r}")
    queued = requeue(db_session(), body["channel"], body["event_ids"], body["reason"],
                     actor=g.api_user.username)
    return {"queued": queued}
