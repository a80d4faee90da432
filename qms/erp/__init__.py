"""The ERP export: the outbox written in the deciding transaction, and its delivery."""
