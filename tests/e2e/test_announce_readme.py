"""The README's "hear an announcement on your own softphone", done as written: baresip set up in
its own folder from its generated templates with the README's lines, registered as bob and
answering by itself; ``sipbot send --as alice "announce sip:bob@example.test ..."`` as the README
types it; alice gets the README's reply and bob hears the sentence.

What the test adds to the README: the bot on a free port (``tests/readme.py``), ``--config`` for
``sipbot send``, and a headless phone: no sound card here, so baresip's audio devices are
emptied and it records what it hears (``sndfile``) for the comparison with espeak-ng.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import load_config
from tests.peers.baresip import RecordingPhone
from tests.peers.console import Console
from tests.readme import recipe, transcript

from .conftest import StartBot
from .test_announce import espeak, heard_as_spoken
from .test_baresip import in_home

HEADLESS = ("audio_player", "audio_source", "audio_alert")
"""baresip settings naming sound devices, emptied for a machine without a sound card."""
SOUND_CARD = re.compile(r"(audio_player|audio_source|audio_alert|module\s+alsa\.so)\b")
"""Template lines about the sound card (with no device set, baresip takes a loaded module's)."""


def without_figures(reply: str) -> str:
    """``reply`` with its seconds replaced: the README shows one run's figure."""
    return re.sub(r"\(\d+\.\d s\)", "(N s)", reply)


async def test_readme_announcement_to_bobs_softphone_works_as_written(
    start_bot: StartBot, tmp_path: Path
) -> None:
    bot = await start_bot()
    home = tmp_path / "home"
    phone_session = transcript("baresip bob", typed="/")
    command = in_home(phone_session.command, home)
    first = await Console.start(command, cwd=home, home=home)  # writes the templates
    await first.expect("baresip is ready")
    assert await first.close("/quit") == 0, first.tail
    folder = home / ".baresip-bob"
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    config = folder / "config"
    template = [line for line in config.read_text().splitlines() if not SOUND_CARD.match(line)]
    headless = [*HEADLESS, "module sndfile.so", f"snd_path {recordings}"]
    config.write_text("\n".join([*template, *headless, ""]) + recipe("baresip config"))
    with (folder / "accounts").open("a") as accounts:
        accounts.write(recipe("baresip bob accounts", bot_port=bot.port))

    console = await Console.start(command, cwd=home, home=home)
    phone = RecordingPhone(console, "bob", recordings)
    try:
        for line in phone_session.shown:
            await console.expect(re.escape(line))
        sentence = transcript("announce", typed="\0")  # one command, nothing typed after it
        program, *args = sentence.command
        assert program == ".venv/bin/sipbot", program
        mark = len(bot.lines)
        code, out, err = await bot.sipbot(*args, "--config", str(bot.config_path))
        assert code == 0, (out, err)
        assert without_figures(out.strip()) == without_figures("\n".join(sentence.shown))
        text = args[-1].removeprefix("announce sip:bob@example.test ")
        reference = await espeak(text, load_config(bot.config_path), tmp_path / "reference.wav")
        await heard_as_spoken(bot, phone, reference, mark=mark)
    finally:
        await phone.close()
