"""Reproducible benchmarks of the costs DESIGN.md cares about (``make bench``).

Every figure is measured in one run beside a baseline measured in the same run, and reported
as a ratio to it, so results from different machines can be compared. Sizes, data and seeds
are fixed; ``--quick`` only shrinks the sizes. Results are printed as a table and written to
``benchmarks/results/latest.json``.

Sections:
- ``writes``: an audited write against the same plain insert (SQLite and PostgreSQL,
  1 and 8 writers), then the chain written by concurrent writers is verified;
- ``chain``: ``audit.verify.verify_chain`` against a bare sha256 loop over the same bytes:
  a first verification (every event's canonical form checked) and a repeated one (the
  canonical form known up to the previous head, as the application remembers it), on
  SQLite and on PostgreSQL;
- ``signing``: one e-signature split into password check, key unwrap and Ed25519.
"""
