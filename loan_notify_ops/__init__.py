"""Ops command: review cases and proof of notice, against the local cloud or a real account."""
