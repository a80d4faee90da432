"""Controlled documents (SOPs, specifications, work instructions, forms): drafted, reviewed
and approved with electronic signatures, effective until retired. The smallest controlled
record type, built entirely on the generic record core (qms.records)."""
