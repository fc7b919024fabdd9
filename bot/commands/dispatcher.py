"""From a person's text to a reply: normalise, ACL, rate limit, feature flags, the handler."""

from __future__ import annotations

import difflib
import functools
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from bot.commands.context import CONFIRMATION, CommandContext, Services, UsageError
from bot.commands.latency import Histogram
from bot.commands.memory import SenderMemory
from bot.commands.ratelimit import RateLimiter
from bot.commands.registry import CommandSpec, Registry, is_enabled, is_visible
from bot.commands.replies import MAX_REPLY_BYTES, Paged, first_page, size
from bot.config import Config
from bot.errors import Refusal
from bot.logs import resolved
from bot.sender import Sender

log = structlog.get_logger("bot.commands")
_SPACES = re.compile(r"\s+")
_END_PUNCTUATION = ".,;:!?¡¿…\"'()[]{}"
OUTCOMES = (
    "ok",
    "usage",
    "refused",
    "refused-admin",
    "refused-domain",
    "disabled",
    "unknown",
    "empty",
    "rate-limited",
    "error",
)
"""What becomes of a message (``outcome`` in the log line and the metrics)."""
UNKNOWN = "unknown"
"""The command of a message that names none (metrics label)."""
TEXTS_READ = 256
"""Messages whose reading (normalised, the command named) is kept: the commands sent most."""
KEPT_LENGTH = 200
"""Characters of a message beyond which its reading is not kept (a command is short)."""


def _lowered(domains: tuple[str, ...]) -> frozenset[str]:
    """``acl.allowed_domains`` as compared (worked out per config: a reload brings its own)."""
    return frozenset(domain.lower() for domain in domains)


def normalise(text: str) -> str:
    """Spaces collapsed, punctuation at the ends dropped: ``  My  Meetings? `` is
    ``My Meetings``."""
    return _SPACES.sub(" ", text).strip().strip(_END_PUNCTUATION).strip()


def _read(
    registry: Registry, version: int, text: str
) -> tuple[str, tuple[CommandSpec, str] | None]:
    """``text`` normalised, and the command of ``registry`` (at ``version``: what it is made
    of changes with each command added) it names with its arguments as typed, if it names
    one."""
    cleaned = normalise(text)
    lowered = cleaned.lower()
    found = registry.match(lowered) if cleaned else None
    if found is None:
        return cleaned, None
    spec, args = found
    if len(lowered) == len(cleaned):  # keep the case of the arguments as typed
        args = cleaned[len(cleaned) - len(args) :] if args else ""
    return cleaned, (spec, args)


_read_kept = functools.lru_cache(maxsize=TEXTS_READ)(_read)
""":func:`_read` of the short messages, kept: a function of its arguments only, and people
send the same few commands."""


@dataclass(slots=True)
class _Tally:
    """The answers of one command (or of messages naming none), for /metrics: counted in
    plain dicts by outcome - a Counter keyed by (command, outcome) pairs cost a tuple and the
    Counter's slower item access for every message."""

    outcomes: dict[str, int]
    """Outcome -> messages answered so."""
    latency: Histogram
    """How long its answers took."""


class Dispatcher:
    def __init__(
        self,
        config: Config,
        registry: Registry,
        services: Services,
        *,
        clock: Callable[[], float] = time.monotonic,
        memory: SenderMemory | None = None,
    ):
        self.config = config
        self._domains = _lowered(config.acl.allowed_domains)
        self.registry = registry
        self.services = services
        self._clock = clock
        limit = config.im.rate_limit
        self._limiter = RateLimiter(limit.rate, limit.burst)
        self.memory = memory if memory is not None else SenderMemory()
        self._tallies: dict[str, _Tally] = {}
        """Command name or UNKNOWN -> its answers: one record per command, found once per
        message (read by /metrics as :attr:`answered` and :attr:`latency`)."""
        self._log = resolved(log)
        """Where the line of each command goes (bot.logs.resolved)."""

    def reconfigure(self, config: Config) -> None:
        """New features, ACL and rate limit (a config reload); senders keep their buckets."""
        self.config = config
        self._domains = _lowered(config.acl.allowed_domains)
        self._limiter.rate = config.im.rate_limit.rate
        self._limiter.burst = config.im.rate_limit.burst

    @property
    def answered(self) -> Counter[tuple[str, str]]:
        """(command name or UNKNOWN, outcome) -> messages answered so: for /metrics."""
        return Counter(
            {(label, outcome): count for label, tally in self._tallies.items()
             for outcome, count in tally.outcomes.items()}
        )  # fmt: skip

    @property
    def latency(self) -> dict[str, Histogram]:
        """Command name or UNKNOWN -> how long its answers took: for /metrics."""
        return {label: tally.latency for label, tally in self._tallies.items()}

    def is_admin(self, address: str) -> bool:
        """``address`` (``user@domain``) is one of ``acl.admins``."""
        return address in self.config.acl.admins

    def command_names(self) -> list[str]:
        """Every value the metrics' ``command`` label takes: a fixed set."""
        return [*(spec.name for spec in self.registry), UNKNOWN]

    def enabled(self, spec: CommandSpec) -> bool:
        return is_enabled(spec, self.config.features)

    async def dispatch(self, sender: Sender, text: str, call_id: str = "") -> str:
        """The reply to ``text``: one IM of at most MAX_REPLY_BYTES whatever the handler
        returned - a longer reply is paged here, its rest kept for 'more' (bot.commands.replies),
        so the IM service always has one short text to send, pager or session alike."""
        started = self._clock()
        address = sender.address
        answer, command, outcome = await self._answer(sender, address, text, started)
        label = command or UNKNOWN
        tally = self._tallies.get(label)
        if tally is None:
            tally = self._tallies[label] = _Tally({}, Histogram())
        tally.outcomes[outcome] = tally.outcomes.get(outcome, 0) + 1
        if isinstance(answer, Paged) or size(answer) > MAX_REPLY_BYTES:
            # the sender's memory as of this command (the one _answer got, unless it was
            # forgotten meanwhile: a long command)
            reply = first_page(answer, self.memory.get(address, started))
        else:
            reply = answer
        took = self._clock() - started
        tally.latency.observe(took)
        self._log.info(
            "im.command.answered",
            call_id=call_id,
            sender=address,
            command=command,
            outcome=outcome,
            ms=round(took * 1000, 1),
        )
        return reply

    async def _answer(
        self, sender: Sender, address: str, text: str, now: float
    ) -> tuple[str | Paged, str, str]:
        """The answer to ``text`` from ``sender`` (``address``) at ``now``, the command named
        and the outcome."""
        read = _read_kept if len(text) <= KEPT_LENGTH else _read
        cleaned, found = read(self.registry, self.registry.version, text)
        if not cleaned:
            return "Send 'help' to see what I can do.", "", "empty"
        if sender.domain.lower() not in self._domains:
            return (
                f"Sorry, I only answer users of {', '.join(self.config.acl.allowed_domains)}.",
                "",
                "refused-domain",
            )
        if not self._limiter.allow(address, now):
            return (
                "You are sending commands faster than I can answer. Please wait a few "
                "seconds and try again.",
                "",
                "rate-limited",
            )
        if found is None:
            self._drop_question(address, now)
            return self._unknown(cleaned, sender), "", "unknown"
        spec, args = found
        admin = self.is_admin(address)
        refused = self._refused(spec, args, admin, cleaned, sender)
        if refused is not None:
            if not spec.answers_question:
                self._drop_question(address, now)
            return refused
        memory = self.memory.get(address, now)
        if not spec.answers_question:
            memory.pop(CONFIRMATION, None)  # a question is answered by the very next message
        # sender, args, config, registry, services, memory, is_admin: in order (no keywords,
        # see CommandContext)
        context = CommandContext(
            sender, args, self.config, self.registry, self.services, memory, admin
        )
        try:
            return await spec.handler(context), spec.name, "ok"
        except UsageError as exc:
            hint = f"{exc} " if str(exc) else ""
            return f"{hint}Usage: {spec.usage} (for example: {spec.example})", spec.name, "usage"
        except Refusal as exc:
            return str(exc), spec.name, "refused"
        except Exception:
            log.exception("im.command.failed", sender=address, command=spec.name)
            return (
                f"Sorry, something went wrong while running '{spec.name}'. It has been "
                "logged; please try again later.",
                spec.name,
                "error",
            )

    def _refused(
        self, spec: CommandSpec, args: str, admin: bool, cleaned: str, sender: Sender
    ) -> tuple[str, str, str] | None:
        """Why ``spec`` is not run for this message (its answer, command and outcome), or None
        when it is."""
        if not is_enabled(spec, self.config.features):
            if self.config.features.hide_disabled:
                return self._unknown(cleaned, sender), spec.name, "unknown"
            return f"'{spec.name}' is turned off here.", spec.name, "disabled"
        if spec.admin_only and not admin:
            return f"Sorry, '{spec.name}' is for administrators only.", spec.name, "refused-admin"
        if args and not spec.takes_args:
            return f"'{spec.name}' takes nothing after it. Usage: {spec.usage}", spec.name, "usage"
        return None

    def _drop_question(self, address: str, now: float) -> None:
        """A question of the bot's still open is dropped by any message that does not answer
        it (bot.commands.context.CONFIRMATION)."""
        memory = self.memory.peek(address, now)
        if memory:
            memory.pop(CONFIRMATION, None)

    def _unknown(self, text: str, sender: Sender) -> str:
        words = [
            word for spec in self.registry if self.enabled(spec)
            and is_visible(spec, self.config.features, admin=self.is_admin(sender.address))
            for word in spec.words
        ]  # fmt: skip
        guess = difflib.get_close_matches(text.lower(), words, n=1, cutoff=0.5)
        shown = text if len(text) <= 40 else text[:37] + "..."
        hint = f" Did you mean '{guess[0]}'?" if guess else ""
        return f"I don't know '{shown}'.{hint} Send 'help' to see what I can do."
