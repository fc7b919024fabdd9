"""Errors the transport raises to whoever starts it."""

from __future__ import annotations

import errno

_HINTS = {
    errno.EADDRINUSE: (
        "another program already listens there - is another sipbot running? Stop it, or "
        "change sip.listen in the config"
    ),
    errno.EACCES: (
        "ports below 1024 need privileges: pick a port from 1024 up in sip.listen, or give "
        "the program CAP_NET_BIND_SERVICE"
    ),
    errno.EADDRNOTAVAIL: "this machine has no such address: change the host in sip.listen",
}


class ListenError(OSError):
    """A listener could not be opened. The message names the transport and address and says
    what to do; it is meant to be printed as it is, without a traceback."""

    def __init__(self, transport: str, host: str, port: int, cause: OSError):
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        reason = (cause.strerror or str(cause)).lower()
        hint = _HINTS.get(cause.errno or 0, "check sip.listen in the config")
        super().__init__(
            cause.errno, f"cannot listen on {transport.lower()} {address}: {reason}; {hint}"
        )
        self.transport = transport
        self.host = host
        self.port = port

    def __str__(self) -> str:
        return str(self.strerror)
