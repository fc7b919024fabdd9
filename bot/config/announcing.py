"""The settings of the bot's calls and announcements: media, calls, sounds, and the
``announcements`` section with its rules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from bot.config.base import Problem as _Problem
from bot.config.base import Section as _Section
from bot.config.base import time_zone as _time_zone


class MediaConfig(_Section):
    """RTP audio of the bot's calls (bot.media)."""

    host: str | None = None
    """Address written in SDP (``c=``) and bound for RTP; None: ``sip.advertise`` or the first
    listener's host."""
    port_min: int = Field(16384, ge=1024, le=65534)
    port_max: int = Field(16999, ge=1025, le=65535)
    """RTP uses the even ports of [port_min, port_max], RTCP the odd port above (RFC 3550 §11)."""
    srtp: Literal["off", "prefer", "require"] = "prefer"
    """off: plain RTP/AVP; prefer: RTP/AVP carrying a=crypto (best-effort SRTP, what Linphone
    and the Lync/SfB AV MCU use, MS-SDPEXT); require: RTP/SAVP only (RFC 4568)."""
    codecs: tuple[Literal["PCMU", "PCMA", "G722"], ...] = ("PCMU", "PCMA")
    """Offered in this order; Lync/SfB joins offer G722 first whatever this says."""
    ptime: int = Field(20, ge=10, le=60)
    rtcp_interval: float = Field(5.0, gt=0)
    """Seconds between RTCP sender reports (RFC 3550 §6.2)."""

    @model_validator(mode="after")
    def _range(self) -> MediaConfig:
        if self.port_max <= self.port_min:
            raise _Problem("port_max must be above port_min", path=("port_max",))
        return self


class CallsConfig(_Section):
    """The bot's outgoing calls (bot.calls)."""

    answer_timeout: float = Field(30.0, gt=0)
    """Seconds to wait for an answer before CANCEL (RFC 3261 §9.1)."""
    session_expires: int = Field(1800, ge=90)
    """Session-Expires offered (RFC 4028 §4); refreshed at half of what is agreed."""
    max_duration: float = Field(600.0, gt=0)
    """The longest a call of the bot lasts, announcement included."""


class SoundsConfig(_Section):
    """What the bot plays: WAV clips and text to speech (bot.sounds)."""

    clips: Path | None = None
    """Folder of WAV clips ``play`` may name (names only, nothing outside it); None: ``clips``
    in the data directory."""
    voice: str = "en"
    """espeak-ng voice (``espeak-ng --voices``)."""
    speed: int = Field(160, ge=80, le=450)
    """Words per minute (espeak-ng -s)."""
    tts_timeout: float = Field(10.0, gt=0)
    lead_silence: float = Field(0.3, ge=0, le=10)
    trail_silence: float = Field(0.5, ge=0, le=10)
    """Seconds of silence before and after every sound."""
    cache_size: int = Field(64, ge=0)
    """Rendered sentences kept, by (text, voice, speed)."""


class RuleConfig(_Section):
    """One automatic announcement (bot.announcements.rules)."""

    name: str = Field(min_length=1)
    when: Literal["start", "before_end", "cron", "join"]
    """start: when a conference starts; before_end: ``minutes`` before it ends; cron: on the
    ``cron`` schedule in ``time_zone``; join: when a participant joins (RFC 4575 roster)."""
    minutes: int = Field(0, ge=0, le=1440)
    cron: str | None = None
    time_zone: Annotated[str, AfterValidator(_time_zone)] = "UTC"
    text: str | None = None
    """Spoken with text to speech; ``{subject}`` and ``{minutes}`` are filled in."""
    clip: str | None = None
    target: str = "all"
    """all, a conference id, or an organizer's user@domain (their conferences); cron rules may
    also name a SIP URI."""
    enabled: bool = True

    @model_validator(mode="after")
    def _complete(self) -> RuleConfig:
        if (self.text is None) == (self.clip is None):
            raise _Problem("a rule needs exactly one of text or clip", path=("text",))
        if self.when == "cron" and not self.cron:
            raise _Problem("a cron rule needs cron (five fields, e.g. '0 9 * * 1-5')",
                           path=("cron",))  # fmt: skip
        if self.when != "cron" and self.target.lower().startswith(("sip:", "sips:")):
            raise _Problem("only a cron rule may name a SIP URI as its target",
                           path=("target",))  # fmt: skip
        return self


class AnnouncementsConfig(_Section):
    """``announce``/``play`` and automatic announcements (bot.announcements)."""

    who: Literal["organizers", "everyone", "admins"] = "organizers"
    """organizers: a user into their own conferences, admins anywhere; everyone: anyone into
    any conference they can name; admins: admins only."""
    uris: Literal["admins", "everyone"] = "admins"
    """Who may name a SIP URI as the target instead of a conference."""
    grace: float = Field(300.0, ge=0)
    """A rule whose time passed while the bot was down fires late only within this (s)."""
    rules: tuple[RuleConfig, ...] = ()
