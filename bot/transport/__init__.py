"""The asyncio shell around the SIP core: sockets, TLS, DNS, and the endpoint pump."""
