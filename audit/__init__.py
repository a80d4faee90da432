"""The hash-chained audit trail: canonical encoding, append, verification, checkpoints and
export. Depends on SQLAlchemy, the standard library, ``cryptography`` and ``msgspec`` (the
verifier's fast canonical-form check) only; the format is public
(docs/audit-trail-format.md)."""
