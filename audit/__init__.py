"""The hash-chained audit trail: canonical encoding, append, verification, checkpoints and
export. Depends on SQLAlchemy, the standard library and ``cryptography`` only; the format
is public (docs/audit-trail-format.md)."""
