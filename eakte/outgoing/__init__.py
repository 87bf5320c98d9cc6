"""Outgoing post (Postausgang): letter templates, letters, SMTP delivery and print batches."""
