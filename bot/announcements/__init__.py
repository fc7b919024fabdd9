"""Announcements: into a conference or to a SIP URI, on command (handlers/announce.py) and
automatically (rules.py); who may name what (targets.py); each automatic occurrence once
(fired.py); the rosters 'join' rules watch (watch.py).

Where automatic announcements find their conferences: in the SQL store
(bot.conferencing.store, ``conferences.backend: store``). ``start`` and ``before_end`` rules
take the times of its ``conferences`` table, cron rules aimed at conferences those in
progress at each time, and ``join`` rules watch the roster of those in progress (RFC 4575,
subscribed without joining the audio). What fired is recorded beside them, on the same
database, so an occurrence fires once across restarts and instances.

With ``conferences.backend: c3p`` only cron rules aimed at a SIP URI run; every other
enabled rule is refused when the config is loaded (``sipbot check-config``, start, reload)
with a message naming the rule's line and ``conferences.backend``. Refused rather than made
to work through the user endpoints' listings, because a Lync / Skype for Business focus keeps
no schedule (MS-CONFPRO: a meeting is a space without times): only the conferences scheduled
through the bot have times (the bot's ``c3p_schedules``), those made in Outlook or the Lync
client have none, so a rule aimed at ``all`` or at an organizer would silently miss most
meetings - and reading every organizer's listing from the focus on each tick costs one C3P
round trip per user. A rule that cannot do what it says is better refused than quiet."""
