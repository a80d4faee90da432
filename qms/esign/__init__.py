"""Electronic signatures (21 CFR Part 11 §11.50, §11.70, §11.100, §11.200, §11.300): per-user
Ed25519 keys wrapped under the user's password (keys), the signature table (models), and
signing, verification, manifestation and segregation of duties (service)."""
