"""Backups: database dump plus content-addressed blobs, verification, restore, the register."""
