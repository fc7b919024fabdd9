"""Issue 19 item 1: the layer's timers, queued by delay, still fire in deadline order and never
early, whatever mix of delays and transports is armed, and whatever ``now`` callers pass."""

from __future__ import annotations

import sys

from bot.sip import make_response
from bot.sip.events import TransactionTimedOut
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


def held(layer: TransactionLayer, tx: ClientTransaction) -> bool:
    """Whether the layer still holds ``tx``: answered, the record of it that it keeps until
    Timer K (RFC 3261 §17.1.2.2); else until it is terminated."""
    if tx.state is State.COMPLETED:
        return tx.key in layer._answered
    return tx.state is not State.TERMINATED


def queued(layer: TransactionLayer) -> int:
    """Timer entries queued, stale ones included."""
    return sum(len(queue) for queue in layer._queues.values())


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
            if not held(layer, tx):
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


def test_an_answered_transaction_is_freed_at_its_final_response_and_timer_k_ends_its_record() -> (
    None
):
    """Once the final response came, nothing of the layer keeps the transaction: Timer K (T4)
    runs on a record of it, and no Timer F (64*T1) was ever queued for a request answered
    before Timer E first fired (issue 19: memory and CPU per command)."""
    link = Link(timers=TIMERS)
    layer = link.client
    tx = layer.send_request(link.request("MESSAGE"), UDP, 0.0)
    assert tx.timers == {Timer.E: 0.5, Timer.F: 32.0} and queued(layer) == 1  # E only
    layer.datagrams_to_send()
    answered(layer, tx, 0.1)
    assert [e.transaction for e in iter(layer.next_event, None)] == [tx]  # the TU had the 200
    assert sys.getrefcount(tx) == 2  # this test's name for it, and getrefcount's argument
    assert layer.transaction_count == 1 and queued(layer) == 2  # the stale Timer E, and K
    layer.handle_timer(0.5)  # the stale Timer E: nothing sent, nothing queued
    assert layer.datagrams_to_send() == [] and queued(layer) == 1
    assert layer.transaction_count == 1 and layer.next_deadline() == 5.1
    layer.handle_timer(5.1)  # Timer K: T4 after the 200
    assert layer.transaction_count == 0 and layer.next_deadline() is None
    assert queued(layer) == 0 and layer._by_peer == {}
    assert tx.state is State.COMPLETED  # the TU's, in its final state


def test_timer_f_queued_at_the_first_timer_e_fires_64_t1_after_sending() -> None:
    """A request not answered by T1: its Timer F is queued when Timer E first fires and
    times it out 64*T1 after it was sent (RFC 3261 §17.1.2.2), through a provisional response,
    in sending order, and also when the first wake-up comes after every deadline."""
    link = Link(timers=TIMERS, drop=lambda data, to: True)
    layer = link.client
    first = layer.send_request(link.request("OPTIONS"), UDP, 0.0)
    second = layer.send_request(link.request("MESSAGE"), UDP, 0.25)
    assert first.request is not None
    layer.receive(make_response(first.request, 100).serialize(), UDP, 0.3)
    assert first.state is State.PROCEEDING and queued(layer) == 2  # the two Timers E
    assert run_timers(layer, [first, second]) == {0: 32.0, 1: 32.25}
    events = list(iter(layer.next_event, None))
    timed_out = [e.transaction for e in events if isinstance(e, TransactionTimedOut)]
    assert timed_out == [first, second]
    assert layer.transaction_count == 0 and queued(layer) == 0

    late = layer.send_request(link.request("OPTIONS"), UDP, 100.0)
    layer.handle_timer(500.0)  # one wake-up, long after Timers E and F were due
    assert late.state is State.TERMINATED and layer.transaction_count == 0
    assert len(layer.datagrams_to_send()) == 2  # the request and the one Timer E copy


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
