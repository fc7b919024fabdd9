"""RFC 3261 §17 / RFC 6026 transactions on a fake clock over a lossy fake link."""

from __future__ import annotations

import dataclasses
import random
from typing import get_args

import pytest

from bot.sip import ProtocolStateError, Request, Response, make_response
from bot.sip.events import (
    AckReceived,
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    TransportFailed,
)
from bot.sip.layer import TransactionLayer
from bot.sip.layer_client import ClientSide
from bot.sip.layer_server import ServerSide
from bot.sip.transaction import CLIENT_TIMERS, Peer, State, Timer, TimerConfig, TimerName

from .link import Link

T1, T2, T4 = 0.5, 4.0, 5.0


def received(link: Link) -> list[RequestReceived]:
    return [e for e in link.server_events if isinstance(e, RequestReceived)]


def finals(link: Link) -> list[Response]:
    return [
        e.response
        for e in link.client_events
        if isinstance(e, ResponseReceived) and e.response.status >= 200
    ]


def answer(link: Link, status: int, index: int = -1) -> None:
    event = received(link)[index]
    link.server.respond(event.transaction, make_response(event.request, status), link.now)
    link.flush()


# --- non-INVITE ------------------------------------------------------------------------------


def test_non_invite_round_trip_and_cleanup_timers_j_and_k() -> None:
    link = Link()
    tx = link.client.send_request(link.request("MESSAGE", body=b"hi"), link.server_peer, 0.0)
    link.flush()
    assert len(received(link)) == 1 and tx.state is State.TRYING
    answer(link, 200)
    assert [r.status for r in finals(link)] == [200]
    assert tx.state is State.COMPLETED and link.client.transaction_count == 1
    link.advance(T4)  # Timer K = T4 on UDP
    assert link.client.transaction_count == 0
    assert link.server.transaction_count == 1
    link.advance(64 * T1 - T4)  # Timer J = 64*T1 on UDP
    assert link.server.transaction_count == 0


def test_the_layers_events_are_the_frozen_dataclasses_with_every_field() -> None:
    """The request and response events the layer makes with their slots' setters (issue 19:
    CPU per message) equal the dataclasses made the usual way, and are as frozen."""
    link = Link()
    tx = link.client.send_request(link.request("MESSAGE"), link.server_peer, 0.0)
    link.flush()
    incoming = received(link)[0]
    assert incoming == RequestReceived(request=incoming.request, transaction=incoming.transaction)
    answer(link, 200)
    response = next(e for e in link.client_events if isinstance(e, ResponseReceived))
    assert response == ResponseReceived(response=finals(link)[0], transaction=tx)
    assert repr(response).startswith("ResponseReceived(response=")
    for event, name in ((incoming, "request"), (response, "transaction")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(event, name, None)


def test_timer_e_doubles_to_t2_and_timer_f_times_out() -> None:
    link = Link(drop=lambda data, to: True)
    link.client.send_request(link.request("OPTIONS"), link.server_peer, 0.0)
    link.advance(40)
    times = [s.at for s in link.sent("OPTIONS")]
    gaps = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
    assert gaps[:4] == [0.5, 1.0, 2.0, 4.0]  # T1, doubling...
    assert set(gaps[4:]) == {4.0}  # ...capped at T2
    assert times[-1] < 64 * T1
    timeouts = [e for e in link.client_events if isinstance(e, TransactionTimedOut)]
    assert len(timeouts) == 1
    assert link.client.transaction_count == 0


def test_provisional_moves_timer_e_to_t2() -> None:
    link = Link(drop=lambda data, to: to == link.server_peer and link.now > 0)
    tx = link.client.send_request(link.request("MESSAGE", body=b"x"), link.server_peer, 0.0)
    link.flush()
    answer(link, 100)
    assert tx.state is State.PROCEEDING
    link.advance(10)
    times = [s.at for s in link.sent("MESSAGE")]
    assert [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)][:2] == [0.5, 4.0]


def test_retransmitted_request_is_answered_from_the_transaction_once_to_the_app() -> None:
    drops = {"200": 2}

    def lose_first_two_200s(data: bytes, to: object) -> bool:
        if data.startswith(b"SIP/2.0 200") and drops["200"]:
            drops["200"] -= 1
            return True
        return False

    link = Link(drop=lose_first_two_200s)
    link.client.send_request(link.request("MESSAGE", body=b"hello"), link.server_peer, 0.0)
    link.flush()
    answer(link, 200)
    link.advance(5)
    assert len(received(link)) == 1
    assert [r.status for r in finals(link)] == [200]
    assert len(link.sent("SIP/2.0 200")) == 3
    assert link.server.stats.retransmissions_absorbed == 2


def test_reliable_transport_never_retransmits_but_still_times_out() -> None:
    link = Link(transport="TCP", drop=lambda data, to: True)
    link.client.send_request(link.request("OPTIONS"), link.server_peer, 0.0)
    link.advance(40)
    assert len(link.sent("OPTIONS")) == 1
    assert [e for e in link.client_events if isinstance(e, TransactionTimedOut)]


def test_reliable_cleanup_is_immediate() -> None:
    link = Link(transport="TCP")
    tx = link.client.send_request(link.request("OPTIONS"), link.server_peer, 0.0)
    link.flush()
    answer(link, 200)
    assert tx.state is State.COMPLETED and link.client.transaction_count == 1
    link.advance(0)
    assert link.server.transaction_count == 0 and link.client.transaction_count == 0


def test_configurable_timers() -> None:
    link = Link(timers=TimerConfig(t1=0.1, t2=0.4, t4=1.0), drop=lambda d, t: True)
    link.client.send_request(link.request("OPTIONS"), link.server_peer, 0.0)
    link.advance(10)
    times = [s.at for s in link.sent("OPTIONS")]
    assert round(times[1] - times[0], 3) == 0.1
    timeout = next(e for e in link.client_events if isinstance(e, TransactionTimedOut))
    assert timeout.transaction.state is State.TERMINATED
    assert times[-1] < 6.4


# --- INVITE client ---------------------------------------------------------------------------


def test_timer_a_doubles_without_cap_and_timer_b_gives_up() -> None:
    link = Link(drop=lambda data, to: True)
    link.client.send_request(link.request("INVITE"), link.server_peer, 0.0)
    link.advance(40)
    times = [s.at for s in link.sent("INVITE")]
    assert [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
    ]
    assert [e for e in link.client_events if isinstance(e, TransactionTimedOut)]


def test_non_2xx_final_is_acked_by_the_transaction_and_confirmed_on_the_server() -> None:
    link = Link()
    tx = link.client.send_request(link.request("INVITE"), link.server_peer, 0.0)
    link.flush()
    assert [s.first_line for s in link.sent("SIP/2.0 100")]  # 100 Trying at once (§17.2.1)
    answer(link, 486)
    acks = link.sent("ACK")
    assert len(acks) == 1
    ack = acks[0].message
    assert isinstance(ack, Request)
    invite = tx.request
    assert ack.via.branch == invite.via.branch  # §17.1.1.3: same branch as the INVITE
    assert ack.cseq.seq == invite.cseq.seq and ack.cseq.method == "ACK"
    assert ack.to.tag is not None  # the To of the response, with its tag
    server_tx = received(link)[0].transaction
    assert server_tx.state is State.CONFIRMED
    assert tx.state is State.COMPLETED
    link.advance(32)  # Timer D (32 s on UDP) and Timer I (T4)
    assert tx.state is State.TERMINATED and server_tx.state is State.TERMINATED
    assert not [e for e in link.server_events if isinstance(e, AckReceived)]


def test_lost_ack_gets_the_failure_retransmitted_and_acked_again_timer_g() -> None:
    acks_to_drop = {"n": 2}

    def drop_acks(data: bytes, to: object) -> bool:
        if data.startswith(b"ACK") and acks_to_drop["n"]:
            acks_to_drop["n"] -= 1
            return True
        return False

    link = Link(drop=drop_acks)
    link.client.send_request(link.request("INVITE"), link.server_peer, 0.0)
    link.flush()
    answer(link, 603)
    link.advance(5)
    times = [s.at for s in link.sent("SIP/2.0 603")]
    assert [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)] == [0.5, 1.0]
    assert len(link.sent("ACK")) == 3
    assert received(link)[0].transaction.state in (State.CONFIRMED, State.TERMINATED)
    assert len([r for r in finals(link) if r.status == 603]) == 1  # the TU hears it once


def test_timer_h_ends_a_failure_never_acked() -> None:
    link = Link(drop=lambda data, to: data.startswith(b"ACK"))
    link.client.send_request(link.request("INVITE"), link.server_peer, 0.0)
    link.flush()
    answer(link, 480)
    link.advance(64 * T1 + 1)
    times = [s.at for s in link.sent("SIP/2.0 480")]
    gaps = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
    assert gaps[:4] == [0.5, 1.0, 2.0, 4.0] and set(gaps[4:]) == {4.0}  # Timer G capped at T2
    assert [e for e in link.server_events if isinstance(e, TransactionTimedOut)]


def test_2xx_is_retransmitted_until_the_ack_and_the_ack_is_resent_for_each_2xx() -> None:
    state = {"dropped": 0}

    def drop_first_ack(data: bytes, to: object) -> bool:
        if data.startswith(b"ACK") and not state["dropped"]:
            state["dropped"] = 1
            return True
        return False

    link = Link(drop=drop_first_ack)
    tx = link.client.send_request(link.request("INVITE"), link.server_peer, 0.0)
    link.flush()
    answer(link, 200)
    assert tx.state is State.ACCEPTED  # RFC 6026
    ok = finals(link)[0]
    ack = Request("ACK", tx.request.uri, tx.request.headers.copy())
    ack.headers.set("CSeq", f"{tx.request.cseq.seq} ACK")
    ack.headers.set("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKack1")
    ack.headers.set("To", ok.headers.get("to") or "")
    link.client.send_ack(ack, link.server_peer, tx)
    link.advance(3)
    assert len(link.sent("SIP/2.0 200")) == 2  # one retransmission (Timer G at T1)...
    assert len(link.sent("ACK")) == 2  # ...answered by the stored ACK
    server_tx = received(link)[0].transaction
    assert server_tx.acked
    assert len([e for e in link.server_events if isinstance(e, AckReceived)]) == 1
    link.advance(64 * T1)  # Timers L and M
    assert tx.state is State.TERMINATED and server_tx.state is State.TERMINATED
    assert not [e for e in link.server_events if isinstance(e, TransactionTimedOut)]


def test_armed_timers_are_the_rfc_ones_for_each_state() -> None:
    """RFC 3261 §17.1.1.2, §17.2.1 and RFC 6026 §7: which timers run in which state."""
    link = Link()
    tx = link.client.send_request(link.request("INVITE"), link.server_peer, 0.0)
    assert set(tx.timers) == {Timer.A, Timer.B}
    link.flush()
    assert set(tx.timers) == set()  # the 100 Trying stops A and B
    answer(link, 200)
    server_tx = received(link)[0].transaction
    assert set(tx.timers) == {Timer.M} and set(server_tx.timers) == {Timer.G, Timer.L}
    options = link.client.send_request(link.request("OPTIONS"), link.server_peer, link.now)
    assert set(options.timers) == {Timer.E, Timer.F}
    link.flush()
    answer(link, 200)
    # Completed: Timer K (T4) runs on the layer's record of the transaction (§17.1.2.2)
    assert set(options.timers) == set()
    assert link.client._answered[options.key][0] == link.now + 5.0
    over_tcp = Peer("TCP", link.server_peer.host, link.server_peer.port)
    reliable = link.client.send_request(link.request("INVITE"), over_tcp, link.now)
    assert set(reliable.timers) == {Timer.B}  # no retransmission over TCP


def test_timer_l_reports_a_2xx_never_acked() -> None:
    link = Link()
    link.client.send_request(link.request("INVITE"), link.server_peer, 0.0)
    link.flush()
    answer(link, 200)
    link.advance(64 * T1 + 1)
    assert [e for e in link.server_events if isinstance(e, TransactionTimedOut)]
    # the client TU saw the 2xx and each retransmission of it (it never ACKed)
    assert len(finals(link)) == len(link.sent("SIP/2.0 200"))


def test_retransmitted_invite_gets_100_and_reaches_the_app_once() -> None:
    link = Link(drop=lambda data, to: data.startswith(b"SIP/2.0 100"))
    link.client.send_request(link.request("INVITE"), link.server_peer, 0.0)
    link.advance(2)
    assert len(link.sent("INVITE")) == 3
    assert len(received(link)) == 1
    assert len(link.sent("SIP/2.0 100")) == 3


# --- CANCEL ----------------------------------------------------------------------------------


def test_cancel_terminates_the_invite_with_487() -> None:
    link = Link()
    tx = link.client.send_request(link.request("INVITE"), link.server_peer, 0.0)
    link.flush()
    answer(link, 180)
    cancel_tx = link.client.cancel(tx, link.now)
    assert cancel_tx is not None
    link.flush()
    cancels = [e for e in link.server_events if isinstance(e, CancelReceived)]
    assert len(cancels) == 1
    statuses = sorted((r.cseq.method, r.status) for r in finals(link))
    assert statuses == [("CANCEL", 200), ("INVITE", 487)]
    assert len(link.sent("ACK")) == 1
    to_tags = {s.message.to.tag for s in link.sent("SIP/2.0 180") + link.sent("SIP/2.0 487")}
    assert len(to_tags) == 1  # the 487 keeps the tag of the 180


def test_cancel_for_nothing_gets_481() -> None:
    link = Link()
    tx = link.client.send_request(link.request("INVITE"), link.server_peer, 0.0)
    link.flush()
    answer(link, 180)
    stray = link.request("CANCEL", branch="z9hG4bKnothing")
    link.client.send_request(stray, link.server_peer, link.now)
    link.flush()
    assert [r.status for r in finals(link)] == [481]
    assert tx.state is State.PROCEEDING


def test_cancel_after_final_is_not_sent() -> None:
    link = Link()
    tx = link.client.send_request(link.request("INVITE"), link.server_peer, 0.0)
    link.flush()
    answer(link, 486)
    assert link.client.cancel(tx, link.now) is None


# --- failures and fallbacks ------------------------------------------------------------------


def test_transport_error_ends_the_transaction_with_an_event() -> None:
    link = Link()
    tx = link.client.send_request(link.request("OPTIONS"), link.server_peer, 0.0)
    link.client.transport_failed(link.server_peer, "ICMP port unreachable")
    link.flush()
    failed = [e for e in link.client_events if isinstance(e, TransportFailed)]
    assert [e.transaction for e in failed] == [tx]
    assert tx.state is State.TERMINATED and link.client.next_deadline() is None


def test_rfc2543_request_without_magic_cookie_is_matched_by_fallback() -> None:
    link = Link(drop=lambda data, to: data.startswith(b"SIP/2.0 200") and link.now < 1)
    request = link.request("OPTIONS", branch="2543style")
    for _ in range(2):
        link.server.receive(request.serialize(), link.client_peer, link.now)
        link.flush()
    assert len(received(link)) == 1


def test_impossible_transition_names_state_and_event() -> None:
    link = Link()
    link.client.send_request(link.request("MESSAGE", body=b"x"), link.server_peer, 0.0)
    link.flush()
    answer(link, 200)
    event = received(link)[0]
    with pytest.raises(ProtocolStateError, match="Completed") as info:
        link.server.respond(event.transaction, make_response(event.request, 202), link.now)
    assert info.value.event == "2xx" and "non-INVITE server" in str(info.value)


def test_request_without_branch_is_refused_by_the_client_layer() -> None:
    link = Link()
    request = link.request("OPTIONS", branch="old")
    with pytest.raises(ValueError, match="branch"):
        link.client.send_request(request, link.server_peer, 0.0)


# --- a lossy network -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_every_transaction_completes_once_over_a_lossy_reordering_duplicating_link(
    seed: int,
) -> None:
    rng = random.Random(seed)
    link = Link(drop=lambda data, to: rng.random() < 0.25, duplicate=0.15, reorder=True, rng=rng)
    requests = [
        link.request("INVITE" if i % 3 == 0 else "MESSAGE", body=b"" if i % 3 == 0 else b"m")
        for i in range(30)
    ]
    call_ids = sorted(r.call_id for r in requests)
    for request in requests:
        link.client.send_request(request, link.server_peer, link.now)
    for _ in range(80):  # the application answers whatever arrived, as time passes
        for event in received(link):
            tx = event.transaction
            if tx.state in (State.TRYING, State.PROCEEDING):
                status = 486 if tx.is_invite else 200
                link.server.respond(tx, make_response(event.request, status), link.now)
        link.advance(0.25)
    link.advance(64 * T1)
    # every request reached the application exactly once...
    assert sorted(e.request.call_id for e in received(link)) == call_ids
    # ...and every client transaction got its one final answer, and all are cleaned up
    answered = [r.call_id for r in finals(link)]
    assert sorted(set(answered)) == call_ids
    assert len(answered) == len(requests)
    assert link.client.transaction_count == 0 and link.server.transaction_count == 0


def test_client_and_server_sides_of_the_layer_define_no_name_twice() -> None:
    """The layer is both sides over one state: a handler of one side named like one of the
    other would silently replace it in the layer (found while splitting the layer)."""
    client = {name for name in vars(ClientSide) if not name.startswith("__")}
    server = {name for name in vars(ServerSide) if not name.startswith("__")}
    assert client and server and not client & server


def test_every_timer_has_one_handler_on_one_side() -> None:
    """A timer armed with no handler would raise out of handle_timer when it fires."""
    layer = TransactionLayer()
    client, server = set(layer._client_timers), set(layer._server_timers)
    # Timers J and K end an answered non-INVITE transaction, kept as a record, not an object:
    # handle_timer ends it itself (LayerBase._answered_ended)
    records = {Timer.J, Timer.K}
    assert client | server | records == set(get_args(TimerName)) and not client & server
    assert not records & (client | server)
    assert client | {Timer.K} == {Timer.A, Timer.B, Timer.D, Timer.E, Timer.F, Timer.K, Timer.M}
    assert client | {Timer.K} == CLIENT_TIMERS  # how the layer finds a queued timer's owner
