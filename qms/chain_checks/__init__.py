"""Recorded verifications of the audit chain: what the audit page shows.

Verifying a million events takes seconds, too long for every visit to the audit page. So
the scheduler (`qms jobs`) verifies on its interval and records the outcome here, and the
page shows the last one with its time; whoever may read the trail can ask for a fresh one
there. Each row is kept (append-only): the record of the trail's periodic review that an
inspector asks for. The API's GET /api/v1/audit/verify still verifies live and records
nothing (a GET writes nothing).
"""
