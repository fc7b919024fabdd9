"""Announcements: into a conference or to a SIP URI, on command (handlers/announce.py) and
automatically (rules.py); who may name what (targets.py); each automatic occurrence once
(fired.py)."""
