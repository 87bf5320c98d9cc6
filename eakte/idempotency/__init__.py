"""Idempotency-Key support: a retried POST gets the stored response, not a duplicate."""
