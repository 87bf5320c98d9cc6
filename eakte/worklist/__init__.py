"""Forwarding and work lists (Weiterleitung, Postkorb), access grants, the principal directory."""
