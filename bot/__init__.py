"""sipbot: a trusted application service for SIP unified-communications networks."""

__version__ = "0.1.0"
