"""Commands declared with a decorator into a typed registry (errbot / opsdroid style)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.commands.context import CommandContext
from bot.commands.replies import Paged

Handler = Callable[[CommandContext], Awaitable[str | Paged]]
"""A command: its reply, as text or as items shown a page at a time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandSpec:
    name: str
    """What the user types, lower case, words separated by one space (``my meetings``)."""
    aliases: tuple[str, ...]
    usage: str
    """The usage line shown for mistakes: ``meeting <number|id>``."""
    summary: str
    """First line of the handler's docstring: the line in ``help``."""
    details: str
    """The rest of the docstring: shown by ``help <command>``."""
    example: str
    feature: str | None
    """The ``features`` flag that switches it on and off."""
    admin_only: bool
    takes_args: bool
    answers_question: bool
    """It answers the bot's last question ('yes', 'no'): a question still open when anything
    else arrives is dropped (bot.commands.context.CONFIRMATION)."""
    handler: Handler

    @property
    def words(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def is_enabled(spec: CommandSpec, features: object) -> bool:
    """The command's ``features`` flag is on (or it has none)."""
    return spec.feature is None or bool(getattr(features, spec.feature, False))


def is_visible(spec: CommandSpec, features: object, *, admin: bool) -> bool:
    """What ``help`` shows: permitted to this sender, and enabled unless disabled commands
    are shown as such (``features.hide_disabled`` off)."""
    if spec.admin_only and not admin:
        return False
    return is_enabled(spec, features) or not getattr(features, "hide_disabled", False)


class Registry:
    def __init__(self) -> None:
        self._specs: dict[str, CommandSpec] = {}
        # built from _specs at every add (start-up), read for every message
        self._by_word: dict[str, CommandSpec] = {}
        self._longest = 0
        self._sorted: tuple[CommandSpec, ...] = ()
        self.version = 0
        """Changes with every command added: what is computed from the commands (help's
        listing) is kept under it, so it is never read from an older set of commands."""

    def add(self, spec: CommandSpec) -> None:
        for word in spec.words:
            owner = self._lookup_exact(word)
            if owner is not None and owner.name != spec.name:
                raise ValueError(f"command word {word!r} already belongs to {owner.name!r}")
        self._specs[spec.name] = spec
        self._by_word = {word: each for each in self._specs.values() for word in each.words}
        self._longest = max(map(len, self._by_word))
        self._sorted = tuple(sorted(self._specs.values(), key=lambda s: s.name))
        self.version += 1

    def _lookup_exact(self, word: str) -> CommandSpec | None:
        return self._by_word.get(word)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._sorted)

    def get(self, name: str) -> CommandSpec | None:
        return self._lookup_exact(name)

    def match(self, text: str) -> tuple[CommandSpec, str] | None:
        """The command ``text`` starts with (longest name wins) and the rest as arguments."""
        # a word matches the whole text (the usual message) or the text up to a space: try
        # those prefixes, the longest first, no longer than the longest word (a long text
        # costs no more)
        whole = self._by_word.get(text) if len(text) <= self._longest else None
        if whole is not None:
            return whole, ""
        ends = [i for i in range(min(self._longest, len(text) - 1), 0, -1) if text[i] == " "]
        for i in ends:
            spec = self._by_word.get(text[:i])
            if spec is not None:
                return spec, text[i:].strip()
        return None

    def words(self) -> list[str]:
        return [word for spec in self._specs.values() for word in spec.words]


REGISTRY = Registry()
"""Where ``@command`` puts what it declares; the bot's own handlers and plug-ins alike."""


def command(
    name: str,
    *,
    aliases: tuple[str, ...] = (),
    usage: str | None = None,
    example: str | None = None,
    feature: str | None = None,
    admin_only: bool = False,
    takes_args: bool = False,
    answers_question: bool = False,
    registry: Registry | None = None,
) -> Callable[[Handler], Handler]:
    """Declare an IM command; help comes from the handler's docstring."""

    def declare(handler: Handler) -> Handler:
        doc = inspect.getdoc(handler) or name
        summary, _, details = doc.partition("\n")
        (registry or REGISTRY).add(
            CommandSpec(
                name=name,
                aliases=aliases,
                usage=usage or name,
                summary=summary.strip(),
                details=details.strip(),
                example=example or name,
                feature=feature,
                admin_only=admin_only,
                takes_args=takes_args,
                answers_question=answers_question,
                handler=handler,
            )
        )
        return handler

    return declare
