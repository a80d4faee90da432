"""The ERP pull feed over HTTP, for service accounts with the ``erp`` role."""
from __future__ import annotations

from flask import Response, g

from qms.api import api
from qms.api.spec import endpoint
from qms.context import commit, db_session
from qms.erp.feed import acknowledge, read_events
from qms.erp.schemas import AcksIn, AcksOut, FeedOut, FeedQuery


@endpoint(api, "/erp/events", "GET", summary="Read ERP events after a cursor", tag="erp",
          permission="erp.feed", query=FeedQuery, response=FeedOut)
def erp_events_view(query):
    """Events in order (``sequence``), at most ``limit``, after the cursor ``after``; with no
    cursor, from your first unacknowledged event. Keep ``next_cursor`` for the next read;
    acknowledge what you have processed. A read that returns events is audited."""
    payloads, cursor = read_events(db_session(), g.api_user.username, query["after"],
                                   query["limit"])
    commit()
    # the stored payloads are the events' delivered JSON, sent as they are
    return Response(f'{{"events":[{",".join(payloads)}],"next_cursor":"{cursor}"}}',
                    mimetype="application/json")


@endpoint(api, "/erp/acks", "POST", summary="Acknowledge ERP events", tag="erp",
          permission="erp.feed", body=AcksIn, response=AcksOut)
def erp_acks_view(body):
    """Acknowledged events are not offered again to a read without a cursor. Idempotent:
    acknowledging an event twice counts it once."""
    count = acknowledge(db_session(), g.api_user.username, body["event_ids"])
    commit()
    return {"acknowledged": count}
