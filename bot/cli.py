"""The ``sipbot`` command: run, check-config, send."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot import __version__
from bot.config import Config, ConfigError, load_config
from bot.logs import configure
from bot.send import SendError, SendOptions, send

if TYPE_CHECKING:
    from bot.runtime import Runtime
from bot.sip.transaction import Peer

DEFAULT_CONFIG = Path("config.yaml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sipbot", description="A SIP trusted application bot.")
    parser.add_argument("--version", action="version", version=f"sipbot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the bot")
    run.add_argument(
        "--config",
        type=Path,
        default=None,
        help="config file (default ./config.yaml; embedded defaults without one)",
    )
    check = commands.add_parser("check-config", help="validate a config file")
    check.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    sender = commands.add_parser("send", help="send one text to the bot and print its reply")
    sender.add_argument("--config", type=Path, default=None)
    sender.add_argument("--as", dest="user", required=True, help="the user to send as")
    sender.add_argument("--password", help="the user's password (default: from the config)")
    sender.add_argument("--to", help="the bot's URI (default: sip:<user>@<domain> from config)")
    sender.add_argument("--server", help="host:port to send to (default: the bot's listen address)")
    sender.add_argument("--timeout", type=float, default=10.0)
    sender.add_argument("text", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return _check(args.config)
    try:
        config = _config(args.config)
    except ConfigError as exc:
        print("\n".join(exc.messages), file=sys.stderr)
        return 2
    if args.command == "run":
        return _run(config, _config_path(args.config))
    return _send(config, args)


def _config(path: Path | None) -> Config:
    return load_config(_config_path(path))


def _config_path(path: Path | None) -> Path | None:
    if path is None:
        return DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None
    return path


def _check(path: Path) -> int:
    try:
        load_config(path)
    except ConfigError as exc:
        print("\n".join(exc.messages), file=sys.stderr)
        return 2
    print(f"{path}: valid")
    return 0


def _run(config: Config, path: Path | None) -> int:
    configure(config.logging)
    from bot.runtime import Runtime

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        runtime = Runtime(config, config_path=path)
        loop.add_signal_handler(signal.SIGHUP, _reload, runtime)
        await runtime.run(stop)

    try:
        asyncio.run(serve())
    except ConfigError as exc:
        print("\n".join(exc.messages), file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"sipbot: cannot start: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _reload(runtime: Runtime) -> None:
    """SIGHUP: read the config file again; a bad file is logged and changes nothing."""
    with contextlib.suppress(ConfigError):
        runtime.reload_file()


def _send(config: Config, args: argparse.Namespace) -> int:
    password = args.password
    if password is None:
        user = config.registrar.users.get(args.user)
        if user is None:
            print(
                f"sipbot send: {args.user!r} is not a user in the config; give --password",
                file=sys.stderr,
            )
            return 2
        password = user.password
    server = None
    if args.server:
        host, _, port = args.server.rpartition(":")
        server = Peer("UDP", host.strip("[]"), int(port))
    options = SendOptions(
        user=args.user,
        password=password,
        text=" ".join(args.text),
        to=args.to,
        server=server,
        timeout=args.timeout,
    )
    try:
        reply = asyncio.run(send(config, options))
    except SendError as exc:
        print(f"sipbot send: {exc}", file=sys.stderr)
        return 1
    print(reply)
    return 0
