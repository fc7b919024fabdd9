"""The loop guard on its own: who counts as an automaton, and the breaker's window."""

from __future__ import annotations

from bot.config import ImConfig
from bot.im.loops import TRACKED, LoopGuard
from bot.sender import Sender
from bot.sip import Headers, Request, parse_uri

BOT = Sender("bot", "example.test")


def message(*headers: tuple[str, str]) -> Request:
    return Request("MESSAGE", parse_uri("sip:bot@example.test"), Headers.of(*headers))


def test_the_bot_itself_listed_automata_and_auto_submitted_are_not_answered() -> None:
    guard = LoopGuard(ImConfig(automata=("sip:Notifier@Example.test",)), BOT)
    person = Sender("alice", "example.test")
    assert guard.from_automaton(message(), person) is None
    assert guard.from_automaton(message(("Auto-Submitted", "no")), person) is None
    assert guard.from_automaton(message(), BOT) == "from the bot itself"
    assert guard.from_automaton(message(), Sender("notifier", "example.test")) == (
        "from a configured automaton"
    )
    marked = message(("Auto-Submitted", "auto-generated"))
    assert guard.from_automaton(marked, person) == "Auto-Submitted: auto-generated"


def test_the_breaker_opens_after_max_replies_in_the_window_and_closes_after() -> None:
    guard = LoopGuard(ImConfig(loop_breaker={"max_replies": 3, "window": 10.0}), BOT)
    alice, bob = Sender("alice", "example.test"), Sender("bob", "example.test")
    assert [guard.may_reply(alice, t) for t in (0.0, 1.0, 2.0, 3.0)] == [True, True, True, False]
    assert guard.may_reply(bob, 3.0)  # per sender
    assert not guard.may_reply(alice, 9.0)
    assert guard.may_reply(alice, 12.5)  # the window has moved on
    assert guard.suppressed == 2


def test_the_breaker_forgets_senders_beyond_what_it_tracks() -> None:
    """Issue 15 item 12: a tripped sender that never wrote again was remembered forever."""
    guard = LoopGuard(ImConfig(loop_breaker={"max_replies": 1, "window": 10.0}), BOT)
    for n in range(TRACKED + 1_000):
        sender = Sender(f"u{n}", "example.test")
        guard.may_reply(sender, 0.0)
        guard.may_reply(sender, 0.0)  # trips it
    assert guard.suppressed == TRACKED + 1_000
    assert len(guard._replies) == TRACKED and len(guard._tripped) == TRACKED
