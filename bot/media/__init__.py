"""RTP audio of the bot's calls: codecs, packetiser and RTCP (sans-IO), SRTP, paced asyncio
streams. Nothing here knows SIP: a call hands a settled ``AudioSession`` to an ``AudioStream``."""
