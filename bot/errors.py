"""Errors meant for a person: whatever layer raises one, its message is the reply."""

from __future__ import annotations


class Refusal(Exception):
    """A polite no (a service refused or did not answer): the message is the reply, said as is
    to the person who asked."""
