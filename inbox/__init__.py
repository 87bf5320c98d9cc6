"""Inbound pipeline: scanned and e-mailed post becomes filed documents or triage items."""
