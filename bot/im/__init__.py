"""Instant messaging: pager-mode MESSAGE (RFC 3428) and Lync-style IM sessions."""
