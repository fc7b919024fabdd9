"""When a UAS answers without keeping a transaction (RFC 3261 §8.2.7, §17.2.2, §26.3.2.4)."""

from __future__ import annotations

STATELESS_REFUSALS = frozenset(
    {400, 404, 405, 413, 414, 415, 416, 420, 421, 423, 481, 488, 501, 505}
)
"""Final responses to non-INVITE requests sent without keeping the transaction for Timer J.

RFC 3261 §17.2.2 keeps a non-INVITE server transaction in Completed for Timer J only so that
a retransmitted request is answered without the TU seeing it again; a UAS may instead behave
statelessly (§8.2.7) when answering again gives the same answer with no side effect. That is
so for these refusals, each decided from the request alone before anything is done with it:
malformed (400), unknown target (404), method or scheme or extension or media or body not
supported (405, 415, 416, 420, 421, 488, 501, 505), too large (413, 414), interval too brief
(423), no such dialog or transaction (481). So unauthenticated requests, which get exactly
these, leave no state (RFC 3261 §26.3.2.4). Not in the set: 2xx to anything but OPTIONS (a
retransmitted MESSAGE must not run a command twice), 401/407 (the TU challenges statelessly
itself, with a nonce of its choosing), 403 (it follows checking credentials, which may count a
failure), and 408/480/486/5xx (they depend on the moment, and repeat what was done)."""


def answered_statelessly(method: str, status: int) -> bool:
    """Whether the final ``status`` to a ``method`` request is sent without a transaction: a
    listed refusal of a non-INVITE request, or any final answer to OPTIONS, which asks about
    capabilities and changes nothing (RFC 3261 §11.2)."""
    if method in ("INVITE", "ACK") or status < 200:
        return False
    return method == "OPTIONS" or status in STATELESS_REFUSALS
