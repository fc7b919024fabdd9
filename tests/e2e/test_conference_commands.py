"""Issue 16 step 0: ``schedule``, ``meeting n``, ``cancel n`` + ``no``/``yes`` over SIP, end to end:
alice talks to ``sipbot run`` with ``sipbot send`` (a subprocess: it registers with digest, sends
one pager MESSAGE, prints the reply the bot sends back, un-registers). Until now these commands
were tested only without SIP.
"""

from __future__ import annotations

import re

from .conftest import RunningBot, StartBot

SUBJECT = "Safety net review"


async def alice(bot: RunningBot, text: str) -> str:
    code, out, err = await bot.sipbot(
        "send", "--config", str(bot.config_path), "--timeout", "10", text
    )
    assert code == 0, f"{text!r}: {out}{err}"
    return out


def entry(listing: str, subject: str) -> tuple[str, str]:
    """The number ``my meetings`` gives the conference called ``subject``, and its line."""
    found = re.findall(rf"^((\d+)\. {re.escape(subject)} - .*)$", listing, re.M)
    assert len(found) == 1, listing
    line, number = found[0]
    return str(number), str(line)


async def test_schedule_show_and_cancel_a_conference_over_sip(start_bot: StartBot) -> None:
    bot = await start_bot()
    before = await alice(bot, "my meetings")
    assert "Weekly sync" in before and SUBJECT not in before, before

    scheduled = await alice(bot, f"schedule {SUBJECT} at tomorrow 10:00 for 45m")
    assert SUBJECT in scheduled, scheduled
    listing = await alice(bot, "my meetings")
    assert "Weekly sync" in listing, listing
    n, line = entry(listing, SUBJECT)
    assert "10:00" in line, line
    ident = re.search(r" - id (\w+) - ", line)
    assert ident is not None, line
    # bob's list is his own
    code, bobs, err = await bot.sipbot(
        "send", "--config", str(bot.config_path), "--as", "bob", "--timeout", "10", "my meetings"
    )
    assert code == 0 and "Design review" in bobs and SUBJECT not in bobs, bobs + err

    details = await alice(bot, f"meeting {n}")
    assert SUBJECT in details and "10:00" in details, details

    # anything but "yes" keeps it
    await alice(bot, f"cancel {n}")
    kept = await alice(bot, "no")
    assert SUBJECT in await alice(bot, "my meetings"), kept

    asked = await alice(bot, f"cancel {n}")
    assert SUBJECT in asked and "yes" in asked.lower(), asked
    done = await alice(bot, "yes")
    assert ident.group(1) in done and "cancel" in done.lower(), done
    after = await alice(bot, "my meetings")
    assert SUBJECT not in after, after
    assert "Weekly sync" in after, after
