"""TLS contexts: certificates verified by default, SNI, optional client certificates.

Trusted applications authenticate to their server with a certificate of their own (mutual TLS,
as UCMA applications do with a Skype for Business pool), so both sides take a cert/key pair.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsConfig:
    certfile: Path | None = None
    """Our certificate chain (PEM): served by listeners, presented to servers that ask."""
    keyfile: Path | None = None
    """The private key of ``certfile`` (PEM)."""
    cafile: Path | None = None
    """CAs to trust (PEM); the system store when None."""
    verify: bool = True
    """Verify the peer's certificate and host name. Turning this off is for lab use only."""
    require_client_cert: bool = False
    """Listeners demand a client certificate signed by ``cafile`` (mutual TLS)."""


def client_context(config: TlsConfig) -> ssl.SSLContext:
    """Context for connections we open: verifies the server and its name (SNI is sent by
    ``create_connection(server_hostname=...)``)."""
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(config.cafile) if config.cafile else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not config.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.certfile is not None:
        context.load_cert_chain(
            str(config.certfile), str(config.keyfile) if config.keyfile else None
        )
    return context


def server_context(config: TlsConfig) -> ssl.SSLContext:
    """Context for our TLS listeners."""
    if config.certfile is None:
        raise ValueError("a TLS listener needs sip.tls.certfile")
    context = ssl.create_default_context(
        ssl.Purpose.CLIENT_AUTH, cafile=str(config.cafile) if config.cafile else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(config.certfile), str(config.keyfile) if config.keyfile else None)
    context.verify_mode = ssl.CERT_REQUIRED if config.require_client_cert else ssl.CERT_OPTIONAL
    if config.cafile is None and not config.require_client_cert:
        context.verify_mode = ssl.CERT_NONE
    return context
