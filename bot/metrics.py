"""What ``/metrics`` shows (Prometheus text format), read from the running bot at scrape time.

Every label takes values from a fixed set (command names, outcomes, RFC 5438 statuses, SIP
methods the bot knows else ``other``, statuses the bot sends else their class): nothing a
sender writes becomes a series. Every counter is there from the start, at zero, except the
SIP responses, whose (direction, method, code) series appear when first seen.

Counters: ``sipbot_auth_failures_total{reason}``, ``sipbot_banned_requests_dropped_total``,
``sipbot_im_commands_total{command,outcome}``, ``sipbot_register_requests_total{outcome}``,
``sipbot_registrar_bindings_total{change}``, ``sipbot_registration_requests_total{outcome}``,
``sipbot_digest_answers_total{outcome}``, ``sipbot_digest_nextnonces_total``,
``sipbot_im_receipts_total{kind,status}``, ``sipbot_im_replies_suppressed_total``,
``sipbot_sip_requests_total{direction,method}``,
``sipbot_sip_responses_total{direction,method,code}``,
``sipbot_sip_messages_received_total``, ``sipbot_sip_messages_dropped_total``,
``sipbot_sip_retransmissions_absorbed_total``, ``sipbot_sip_retransmissions_sent_total``,
``sipbot_rtp_packets_total{direction}``, ``sipbot_config_reloads_total{result}``.

Histogram: ``sipbot_im_command_seconds{command}``.

Gauges: ``sipbot_bans_active``, ``sipbot_registered_users``, ``sipbot_registered_with_server``,
``sipbot_sip_transactions``, ``sipbot_sip_connections``, ``sipbot_im_sessions``,
``sipbot_calls``, ``sipbot_user_endpoints``, ``sipbot_listing_cache_entries``,
``sipbot_command_memory_senders``, ``sipbot_heartbeat_age_seconds``,
``sipbot_digest_nonces_tracked``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol, TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from bot.calls.calls import Calls
from bot.commands.dispatcher import OUTCOMES, Dispatcher
from bot.commands.latency import Histogram
from bot.conferencing.endpoints import UserEndpointPool
from bot.conferencing.store import ConferenceStore
from bot.health import Heartbeat
from bot.im.receipts import labels as receipt_labels
from bot.im.service import ImService
from bot.reload import RESULTS, Result
from bot.services.guard import AuthGuard
from bot.services.registrar import Registrar
from bot.services.registration import Registration
from bot.sip.digest_server import VERDICTS, DigestServer
from bot.transport.endpoint import SipEndpoint

K = TypeVar("K", bound=str)
"""A label value."""
REGISTER_OUTCOMES = ("ok", "challenged", "refused", "invalid", "error")
"""What became of a REGISTER: 200, a challenge, 403/404, another 4xx, a 5xx."""
BINDING_CHANGES = ("added", "refreshed", "removed")
"""What a REGISTER the embedded registrar accepted did to each binding."""
REGISTRATION_OUTCOMES = ("registered", "refreshed", "failed")
"""What became of a REGISTER the bot sent (external mode)."""


class Bot(Protocol):
    """The parts of the running bot (bot.runtime.Runtime) the figures come from."""

    @property
    def endpoint(self) -> SipEndpoint: ...
    @property
    def dispatcher(self) -> Dispatcher: ...
    @property
    def registrar(self) -> Registrar | None: ...
    @property
    def registration(self) -> Registration | None: ...
    @property
    def im(self) -> ImService | None: ...
    @property
    def endpoints(self) -> UserEndpointPool: ...
    @property
    def store(self) -> ConferenceStore: ...
    @property
    def calls(self) -> Calls: ...
    @property
    def reloads(self) -> Counter[Result]: ...


class GuardCollector(Collector):
    """The guard's counters: password guessing and bans."""

    def __init__(self, guard: AuthGuard):
        self.guard = guard

    def collect(self) -> Iterator[Metric]:
        failures = CounterMetricFamily(
            "sipbot_auth_failures", "Failed digest authentications", labels=["reason"]
        )
        for reason, count in sorted(self.guard.failures_total.items()):
            failures.add_metric([reason], count)
        yield failures
        now = asyncio.get_running_loop().time()
        yield GaugeMetricFamily(
            "sipbot_bans_active",
            "Addresses banned for password guessing",
            self.guard.active_bans(now),
        )
        yield CounterMetricFamily(
            "sipbot_banned_requests_dropped",
            "Requests from banned addresses dropped unanswered",
            self.guard.dropped,
        )


class HeartbeatCollector(Collector):
    """How late the event loop is: the age of its heartbeat (bot.health)."""

    def __init__(self, heartbeat: Heartbeat):
        self.heartbeat = heartbeat

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "sipbot_heartbeat_age_seconds",
            "Seconds since the event loop's heartbeat last beat (every second when all is well)",
            self.heartbeat.age() or 0.0,
        )


class BotCollector(Collector):
    """Commands, registrations, IM, and the sizes of what the bot holds in memory (what a
    flood must leave at its baseline)."""

    def __init__(self, bot: Bot):
        self.bot = bot

    def collect(self) -> Iterator[Metric]:
        yield from self._commands()
        yield from self._registrations()
        yield from self._im()
        yield from self._sip()
        yield from self._held()
        yield from self._reloads()

    def _commands(self) -> Iterator[Metric]:
        dispatcher = self.bot.dispatcher
        commands = CounterMetricFamily(
            "sipbot_im_commands",
            "Messages answered, by command (unknown: none named) and outcome",
            labels=["command", "outcome"],
        )
        answered = dispatcher.answered  # built from the per-command tallies: read once
        names = sorted({*dispatcher.command_names(), *(c for c, _ in answered)})
        for command in names:
            for outcome in OUTCOMES:
                commands.add_metric([command, outcome], answered[(command, outcome)])
        yield commands
        latency = HistogramMetricFamily(
            "sipbot_im_command_seconds",
            "Seconds from a message to its reply, by command (unknown: none named)",
            labels=["command"],
        )
        latencies = dispatcher.latency
        for command in names:
            took = latencies.get(command) or Histogram()
            latency.add_metric([command], took.cumulative(), took.total)
        yield latency

    def _registrations(self) -> Iterator[Metric]:
        registrar, registration = self.bot.registrar, self.bot.registration
        outcomes = dict.fromkeys(REGISTER_OUTCOMES, 0)
        for status, count in (registrar.answered if registrar else {}).items():
            outcomes[register_outcome(status)] += count
        requests = CounterMetricFamily(
            "sipbot_register_requests",
            "REGISTERs the embedded registrar answered, by outcome",
            labels=["outcome"],
        )
        for outcome, count in outcomes.items():
            requests.add_metric([outcome], count)
        yield requests
        yield _counted(
            "sipbot_registrar_bindings",
            "Bindings the embedded registrar added, refreshed and removed",
            "change",
            BINDING_CHANGES,
            registrar.bindings_changed if registrar else {},
        )
        yield _counted(
            "sipbot_registration_requests",
            "REGISTERs the bot sent to the external registrar, by outcome",
            "outcome",
            REGISTRATION_OUTCOMES,
            registration.outcomes if registration else {},
        )
        yield GaugeMetricFamily(
            "sipbot_registered_users",
            "Users with a live binding at the embedded registrar",
            registrar.registered_users if registrar else 0,
        )
        yield GaugeMetricFamily(
            "sipbot_registered_with_server",
            "1 while the bot is registered with the external SIP server",
            int(registration.registered) if registration else 0,
        )
        yield from _digest(registrar.gate.digest if registrar else None)

    def _im(self) -> Iterator[Metric]:
        im = self.bot.im
        receipts = CounterMetricFamily(
            "sipbot_im_receipts",
            "IMDN receipts received for the bot's messages (RFC 5438)",
            labels=["kind", "status"],
        )
        received = im.receipts.received if im else {}
        for kind, status in sorted({*receipt_labels(), *received}):
            receipts.add_metric([kind, status], received.get((kind, status), 0))
        yield receipts
        yield CounterMetricFamily(
            "sipbot_im_replies_suppressed",
            "Replies not sent because a conversation looked like a loop",
            im.loops.suppressed if im else 0,
        )
        yield GaugeMetricFamily(
            "sipbot_im_sessions", "Open IM sessions (INVITE-based)", im.session_count if im else 0
        )

    def _sip(self) -> Iterator[Metric]:
        endpoint = self.bot.endpoint
        stats = endpoint.layer.stats
        requests = CounterMetricFamily(
            "sipbot_sip_requests",
            "SIP requests received (in) and sent (out), by method (other: one the bot does not "
            "know); retransmissions the bot sends are not counted again",
            labels=["direction", "method"],
        )
        flows = stats.messages.flows()
        for direction, flow in flows:
            for method, count in flow.requests.items():
                requests.add_metric([direction, method], count)
        yield requests
        responses = CounterMetricFamily(
            "sipbot_sip_responses",
            "SIP responses received (in) and sent (out), by the method of their CSeq and their "
            "status (exact for those the bot sends, else the class: 4xx)",
            labels=["direction", "method", "code"],
        )
        for direction, flow in flows:
            for (method, code), count in sorted(flow.read().items()):
                responses.add_metric([direction, method, code], count)
        yield responses
        for name, value, what in (
            ("messages_received", stats.received, "SIP messages received"),
            ("messages_dropped", stats.dropped, "SIP messages dropped unanswered"),
            ("retransmissions_absorbed", stats.retransmissions_absorbed,
             "Retransmitted requests answered from their transaction"),
            ("retransmissions_sent", stats.retransmissions_sent,
             "Requests and responses sent again (RFC 3261 timers A, E, G)"),
        ):  # fmt: skip
            yield CounterMetricFamily(f"sipbot_sip_{name}", what, value)
        yield GaugeMetricFamily(
            "sipbot_sip_transactions",
            "SIP transactions held (RFC 3261 §17), client and server",
            endpoint.layer.transaction_count,
        )
        yield GaugeMetricFamily(
            "sipbot_sip_connections", "Open TCP and TLS connections", endpoint.connection_count
        )

    def _held(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "sipbot_user_endpoints", "User endpoints in the pool", len(self.bot.endpoints)
        )
        calls = self.bot.calls
        yield GaugeMetricFamily("sipbot_calls", "Calls in progress", len(calls))
        rtp = CounterMetricFamily(
            "sipbot_rtp_packets", "RTP packets the bot's calls sent and received",
            labels=["direction"],
        )  # fmt: skip
        sent, received = calls.rtp_packets()
        rtp.add_metric(["sent"], sent)
        rtp.add_metric(["received"], received)
        yield rtp
        yield GaugeMetricFamily(
            "sipbot_listing_cache_entries",
            "Organizers whose conference listing is cached",
            len(self.bot.store.listings),
        )
        yield GaugeMetricFamily(
            "sipbot_command_memory_senders",
            "Senders the commands remember something of (last listing, pending question)",
            len(self.bot.dispatcher.memory),
        )

    def _reloads(self) -> Iterator[Metric]:
        yield _counted(
            "sipbot_config_reloads",
            "Config reloads by result: ok, invalid (nothing changed), restart_needed",
            "result",
            RESULTS,
            self.bot.reloads,
        )


def _digest(digest: DigestServer | None) -> Iterator[Metric]:
    """The embedded registrar's digest: right answers by outcome (pre-authorized: an earlier
    nonce with a higher count, RFC 7616 §3.4), next nonces offered, counts remembered."""
    yield _counted(
        "sipbot_digest_answers",
        "Right digest answers, by outcome (preauthorized: no challenge round)",
        "outcome",
        VERDICTS,
        digest.verdicts if digest else {},
    )
    yield CounterMetricFamily(
        "sipbot_digest_nextnonces",
        "Next nonces offered in Authentication-Info (RFC 7616 §3.5)",
        digest.next_nonces if digest else 0,
    )
    yield GaugeMetricFamily(
        "sipbot_digest_nonces_tracked",
        "Nonces whose highest nonce count is remembered (the replay guard)",
        digest.tracked if digest else 0,
    )


def register_outcome(status: int) -> str:
    """The REGISTER_OUTCOMES value of a registrar's answer."""
    if 200 <= status < 300:
        return "ok"
    if status in (401, 407):
        return "challenged"
    if status in (403, 404):
        return "refused"
    return "invalid" if status < 500 else "error"


def _counted(
    name: str, what: str, label: str, keys: Iterable[K], counts: Mapping[K, int]
) -> CounterMetricFamily:
    """A counter with one label whose values are the fixed ``keys`` (each listed, at zero when
    not counted yet): a bounded set of series whatever the counts hold."""
    family = CounterMetricFamily(name, what, labels=[label])
    for key in keys:
        family.add_metric([key], counts.get(key, 0))
    return family
