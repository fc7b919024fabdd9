"""The ``sipbot`` command: run, check-config, send, bans, unban, db."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import __version__, eventloop
from bot.config import Config, ConfigError, load_config
from bot.control import ControlError, ask
from bot.datadir import data_dir, prepare
from bot.logs import configure
from bot.send import BotAddress, SendError, SendOptions, client_part, send
from bot.sip.grammar import is_digits

if TYPE_CHECKING:
    from bot.db.schema import Revision
    from bot.runtime import Runtime
from bot.sip.transaction import Peer

DEFAULT_CONFIG = Path("config.yaml")
CONFIG_ERROR = 2
"""Exit status for a mistake in the config or on the command line."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return _check(args.config)
    if args.command == "bans":
        return _bans(data_dir(args.data_dir))
    if args.command == "unban":
        return _unban(data_dir(args.data_dir), args.address)
    if args.command == "send":
        return _send(args)
    if args.command == "db":
        return _db(args)
    try:
        config = load_config(_config_path(args.config))
    except ConfigError as exc:
        print("\n".join(exc.messages), file=sys.stderr)
        return CONFIG_ERROR
    return _run(config, _config_path(args.config), data_dir(args.data_dir))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sipbot", description="A SIP trusted application bot.")
    parser.add_argument("--version", action="version", version=f"sipbot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the bot's data directory: the SQLite database (unless conferences.database_url "
        "says otherwise) and the control socket (default $XDG_DATA_HOME/sipbot, else "
        "~/.local/share/sipbot)",
    )
    run = commands.add_parser("run", parents=[data], help="run the bot")
    run.add_argument(
        "--config",
        type=Path,
        default=None,
        help="config file (default ./config.yaml; embedded defaults without one)",
    )
    check = commands.add_parser("check-config", help="validate a config file")
    check.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    _send_arguments(
        commands.add_parser(
            "send",
            help="send one text to the bot and print its reply",
            description="Register as a user, send one text to the bot, print the bot's reply. "
            "Exit 0 with the reply; 1 when it fails or times out (saying why); 2 for a usage or "
            "config mistake. Only the bot's address, its domain and the user's password are "
            "read from the config file; all three can be given as options instead.",
        )
    )
    commands.add_parser(
        "bans",
        parents=[data],
        help="list the addresses the running bot has banned for password guessing",
    )
    unban = commands.add_parser(
        "unban", parents=[data], help="lift the running bot's ban of an address"
    )
    unban.add_argument("address", help="the banned IP address, as `sipbot bans` shows it")
    database = commands.add_parser(
        "db",
        parents=[data],
        help="the database's schema (sipbot run migrates it at start too)",
        description="Migrate the schema of the database in conferences.database_url (else "
        "the SQLite file in the data directory), or say which revision it is at. Safe while "
        "instances run or start: one migration at a time.",
    )
    database.add_argument("action", choices=["upgrade", "current"])
    database.add_argument("--config", type=Path, default=None, help="config file")
    return parser


def _send_arguments(sender: argparse.ArgumentParser) -> None:
    sender.add_argument(
        "text", nargs="+", help="what to say to the bot, e.g. my meetings (words are joined)"
    )
    sender.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="the bot's config file, read for the address, domain and passwords only "
        "(default ./config.yaml when there is one, else the embedded defaults)",
    )
    sender.add_argument(
        "--as", dest="user", default="alice", help="the user to send as (default alice)"
    )
    sender.add_argument(
        "--password", metavar="SECRET", help="the user's password (default: from the config)"
    )
    sender.add_argument(
        "--server",
        metavar="HOST:PORT",
        help="where to send over UDP (default: the bot's first listen address in the config)",
    )
    sender.add_argument(
        "--domain", help="the SIP domain of the user and the bot (default: sip.domain)"
    )
    sender.add_argument(
        "--to", metavar="URI", help="the bot's URI (default sip:<sip.user>@<domain>)"
    )
    sender.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds for all of it - registration, the message and the reply (default 10)",
    )


def _config_path(path: Path | None) -> Path | None:
    if path is None:
        return DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None
    return path


def _check(path: Path) -> int:
    try:
        load_config(path)
    except ConfigError as exc:
        print("\n".join(exc.messages), file=sys.stderr)
        return CONFIG_ERROR
    print(f"{path}: valid")
    return 0


def _run(config: Config, path: Path | None, data: Path) -> int:
    configure(config.logging)
    from sqlalchemy.exc import SQLAlchemyError

    from bot.runtime import Runtime

    async def serve() -> None:
        """Until SIGTERM/SIGINT; then the orderly stop (bot.shutdown) and exit 0 - also when
        the deadline cut some of it: the stop asked for was done, the log names what was cut."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        runtime = Runtime(config, config_path=path, data_dir=data)
        reload_on_sighup(runtime)
        await runtime.run(stop)

    try:
        prepare(data)
        print(f"sipbot: data in {data}", file=sys.stderr, flush=True)
        eventloop.run(serve(), config.runtime.event_loop)
    except ConfigError as exc:
        print("\n".join(exc.messages), file=sys.stderr)
        return CONFIG_ERROR
    except OSError as exc:
        print(f"sipbot: cannot start: {_os_error(exc)}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"sipbot: cannot open the database: {exc}", file=sys.stderr)
        return 1
    return 0


def _db(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from bot.conferencing.store import default_url

    try:
        config = load_config(_config_path(args.config))
    except ConfigError as exc:
        print("\n".join(exc.messages), file=sys.stderr)
        return CONFIG_ERROR
    configure(config.logging)  # its events to stderr, as run's: stdout is the answer
    try:
        url = config.conferences.database_url or default_url(prepare(data_dir(args.data_dir)))
        before, after = asyncio.run(_revisions(url, upgrade=args.action == "upgrade"))
    except OSError as exc:
        print(f"sipbot db {args.action}: {_os_error(exc)}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"sipbot db {args.action}: cannot open the database: {exc}", file=sys.stderr)
        return 1
    print(_said(before, after) if args.action == "upgrade" else _said_current(after))
    return 0


async def _revisions(url: str, *, upgrade: bool) -> tuple[Revision, Revision]:
    from sqlalchemy.ext.asyncio import create_async_engine

    from bot.db import schema

    engine = create_async_engine(url)
    try:
        if upgrade:
            return await schema.upgrade(engine)
        now = await schema.current(engine)
        return now, now
    finally:
        await engine.dispose()


def _said(before: Revision, after: Revision) -> str:
    if before.legacy:
        return f"adopted the tables of an older sipbot: the schema is at {after.current} (newest)"
    if before.current == after.current:
        return f"the schema is at {after.current}, the newest: nothing to do"
    return f"upgraded the schema from {before.current or 'nothing'} to {after.current} (newest)"


def _said_current(revision: Revision) -> str:
    if revision.current == revision.head:
        return f"{revision.current} (newest)"
    if revision.legacy:
        return "none: tables of an older sipbot; `sipbot db upgrade` adopts them"
    if revision.current is None:
        return "none: no schema yet; `sipbot db upgrade` (or `sipbot run`) makes it"
    return f"{revision.current}; the newest is {revision.head}: run `sipbot db upgrade`"


def _os_error(exc: OSError) -> str:
    if exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc.strerror or exc)


def reload_on_sighup(runtime: Runtime) -> None:
    """SIGHUP: read the config file again (Runtime.reload_file, the path the file watcher and
    POST /admin/reload take); a bad file is logged, counted and changes nothing."""

    def reload() -> None:
        with contextlib.suppress(ConfigError):
            runtime.reload_file("sighup")

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)


def _send(args: argparse.Namespace) -> int:
    try:
        config = load_config(_config_path(args.config), keep=client_part(args.user))
        bot = _bot_address(config, args)
    except ConfigError as exc:
        print("\n".join(f"sipbot send: {m}" for m in exc.messages), file=sys.stderr)
        return CONFIG_ERROR
    password = args.password
    if password is None:
        user = config.registrar.users.get(args.user)
        if user is None:
            print(
                f"sipbot send: {args.user!r} is not a user in the config; give --password",
                file=sys.stderr,
            )
            return CONFIG_ERROR
        password = user.password
    options = SendOptions(
        user=args.user,
        password=password,
        text=" ".join(args.text),
        to=args.to,
        timeout=args.timeout,
    )
    try:
        reply = asyncio.run(send(bot, options))
    except SendError as exc:
        print(f"sipbot send: {exc}", file=sys.stderr)
        return 1
    print(reply)
    return 0


def _bot_address(config: Config, args: argparse.Namespace) -> BotAddress:
    bot = BotAddress.of(config)
    domain = args.domain or bot.domain
    changes: dict[str, Any] = {"domain": domain}
    if args.domain:
        changes["uri"] = f"sip:{config.sip.user}@{domain}"
    if args.server:
        host, _, port = args.server.rpartition(":")
        if not host or not is_digits(port) or not 0 < int(port) < 65536:
            raise ConfigError([f"--server: give HOST:PORT (127.0.0.1:5060), not {args.server!r}"])
        changes["server"] = Peer("UDP", host.strip("[]"), int(port))
    return dataclasses.replace(bot, **changes)


def _bans(data: Path) -> int:
    try:
        answer = asyncio.run(ask(data, {"command": "bans"}))
    except ControlError as exc:
        print(f"sipbot bans: {exc}", file=sys.stderr)
        return 1
    bans = answer.get("bans", [])
    if not bans:
        print("no address is banned")
    for ban in bans:
        users = ", ".join(ban["users_tried"]) or "-"
        print(
            f"{ban['address']}: banned for {_duration(ban['seconds_left'])} more after "
            f"{ban['failures']} failed attempts (users tried: {users}); "
            f"lift it with: sipbot unban {ban['address']}"
        )
    return 0


def _unban(data: Path, address: str) -> int:
    try:
        answer = asyncio.run(ask(data, {"command": "unban", "address": address}))
    except ControlError as exc:
        print(f"sipbot unban: {exc}", file=sys.stderr)
        return 1
    if not answer.get("ok"):
        print(f"sipbot unban: {answer.get('error')}", file=sys.stderr)
        return 1
    print(f"{address}: ban lifted")
    return 0


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
