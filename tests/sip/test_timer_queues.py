"""Issue 19 item 1: the layer's timers, queued by delay, still fire in deadline order and never
early, whatever mix of delays and transports is armed, and whatever ``now`` callers pass."""

from __future__ import annotations

import sys

from bot.sip import make_response
from bot.sip.layer import TransactionLayer
from bot.sip.transaction import ClientTransaction, Peer, State, Timer, TimerConfig
from tests.sip.link import Link

UDP = Peer("UDP", "192.0.2.2", 5060)
TCP = Peer("TCP", "192.0.2.2", 5060)
TIMERS = TimerConfig(t1=0.5, t2=4.0, t4=5.0)


def answered(layer: TransactionLayer, tx: ClientTransaction, now: float) -> None:
    """The 200 to ``tx``'s request arrives at ``now``: Timer K starts (RFC 3261 §17.1.2.2)."""
    assert tx.request is not None
    layer.receive(make_response(tx.request, 200).serialize(), tx.peer, now)
    assert tx.state is State.COMPLETED


def run_timers(layer: TransactionLayer, txs: list[ClientTransaction]) -> dict[int, float]:
    """Let time run, waking up when the layer asks, until no timer is left: when each of
    ``txs`` (by index) ended. The wake-ups never go back in time."""
    ended: dict[int, float] = {}
    last = float("-inf")
    while (deadline := layer.next_deadline()) is not None:
        assert deadline >= last
        last = deadline
        layer.handle_timer(deadline)
        layer.datagrams_to_send()
        for index, tx in enumerate(txs):
            if tx.state is State.TERMINATED:
                ended.setdefault(index, deadline)
    return ended


def test_mixed_delays_fire_in_deadline_order_and_on_time() -> None:
    link = Link(timers=TIMERS)
    layer = link.client
    plan = [(UDP, 0.0), (TCP, 0.1), (UDP, 0.2), (TCP, 0.3)]
    txs = [
        layer.send_request(link.request("MESSAGE", body=b"%d" % n), peer, at)
        for n, (peer, at) in enumerate(plan)
    ]
    for index, at in ((3, 0.31), (1, 0.32), (2, 0.33), (0, 0.34)):
        answered(layer, txs[index], at)  # before Timer E: nothing is retransmitted
    # Timer K: 0 over TCP, T4 over UDP, counted from each response's arrival (§17.1.2.2)
    assert run_timers(layer, txs) == {3: 0.31, 1: 0.32, 2: 5.33, 0: 5.34}
    assert layer.transaction_count == 0


def test_an_earlier_now_never_fires_a_timer_before_one_armed_later() -> None:
    """A caller's clock going back counts as the latest ``now`` the layer saw: each delay's
    timers stay in the order they were armed, and none fires before its delay has run."""
    link = Link(timers=TIMERS, drop=lambda data, to: True)
    layer = link.client
    late = layer.send_request(link.request("OPTIONS"), UDP, 10.0)
    early = layer.send_request(link.request("OPTIONS"), UDP, 4.0)
    assert late.timers[Timer.E] == early.timers[Timer.E] == 10.5
    assert late.timers[Timer.F] == early.timers[Timer.F] == 10.0 + 64 * 0.5
    assert run_timers(layer, [late, early]) == {0: 42.0, 1: 42.0}  # Timer F: 64*T1
    assert layer.transaction_count == 0


def test_an_answered_transaction_is_freed_when_timer_k_ends_it_not_when_f_would_have() -> None:
    """The queued Timer F of an answered request (64*T1) no longer holds its transaction:
    once Timer K (T4) ended it, nothing of the layer keeps it (issue 19: memory per command)."""
    link = Link(timers=TIMERS)
    layer = link.client
    tx = layer.send_request(link.request("MESSAGE"), UDP, 0.0)
    answered(layer, tx, 0.1)
    assert [e.transaction for e in iter(layer.next_event, None)] == [tx]  # the TU had the 200
    layer.handle_timer(5.1)  # Timer K: T4 after the 200
    assert tx.state is State.TERMINATED
    assert sys.getrefcount(tx) == 2  # this test's name for it, and getrefcount's argument
    assert layer.transaction_count == 0 and layer.next_deadline() is None


def test_a_transaction_whose_key_a_new_one_took_still_times_out() -> None:
    """A caller reusing a branch: the new transaction takes the key (its responses), and the
    old one still ends on its own Timer F (RFC 3261 §17.1.2.2) with the TU told."""
    link = Link(timers=TIMERS, drop=lambda data, to: True)
    layer = link.client
    old = layer.send_request(link.request("OPTIONS", branch="z9hG4bK-same"), UDP, 0.0)
    new = layer.send_request(link.request("OPTIONS", branch="z9hG4bK-same"), UDP, 1.0)
    assert run_timers(layer, [old, new]) == {0: 32.0, 1: 33.0}
    timed_out = [e.transaction for e in iter(layer.next_event, None)]
    assert timed_out == [old, new]
