"""The release check over HTTP. Release, rejection, hold and the other batch decisions are
transitions of the batch (``POST /batches/{number}/transitions``, qms.records.api); a release
whose gates fail answers 409 ``release-gates-failed`` with a ``gates`` member."""
from __future__ import annotations

from qms.api import api
from qms.api.spec import endpoint
from qms.context import db_session
from qms.materials.models import BATCHES
from qms.records.service import find_record
from qms.release.schemas import ReleaseCheckOut
from qms.release.service import release_check, release_rules


@endpoint(api, "/batches/<number>/release-check", "GET", summary="Check the release gates",
          tag=BATCHES.collection, permission="record.read", response=ReleaseCheckOut,
          errors=(404,))
def release_check_view(number: str):
    """Every release gate that applies to the batch's material kind, with ``passed`` and a
    ``detail`` saying what passed or what is missing; ``ready`` when all pass. Changes
    nothing."""
    session = db_session()
    check = release_check(session, find_record(session, BATCHES, number), release_rules())
    return ReleaseCheckOut().dump(check)
