"""The Docker image, checked without a Docker daemon: the Dockerfile installs from the same dependency lists as
./run (setup.cfg's install_requires and requirements-nodeps.txt, with no second copy), exposes HTTP, SIP and
the RTP range of the settings' defaults, runs as a non-root user, keeps the store and recordings in its
volume and checks /readyz; docker-compose.yml puts it behind a reverse proxy that trusts nothing else."""
from __future__ import annotations

import configparser
import ipaddress
import re
import shlex
from pathlib import Path

import pytest
import yaml

from config.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines, joined = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        joined += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            if joined.strip():
                lines.append(joined.strip())
            joined = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def arguments(name: str) -> list[str]:
    return [args for instruction, args in instructions() if instruction == name]


def install_requires() -> list[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return [line.strip() for line in config["options"]["install_requires"].splitlines() if line.strip()]


def distribution(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def nodeps_requirements() -> list[str]:
    return [line.strip() for line in (ROOT / "requirements-nodeps.txt").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def env() -> dict[str, str]:
    """The Dockerfile's ENV (KEY=VALUE pairs)."""
    found = {}
    for args in arguments("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            found[key] = value
    return found


def test_the_image_installs_from_the_same_lists_as_run() -> None:
    run = (ROOT / "run").read_text()
    assert 'pip_install -e ".[test]"' in run and "pip_install --no-deps -r requirements-nodeps.txt" in run
    pip_runs = [args for args in arguments("RUN") if "pip install" in args]
    assert len(pip_runs) == 1, pip_runs
    commands = [command.strip() for command in pip_runs[0].split("&&")]
    assert "pip install --no-cache-dir ." in commands  # setup.cfg's install_requires, without the test extra
    assert "pip install --no-cache-dir --no-deps -r requirements-nodeps.txt" in commands
    copied = " ".join(arguments("COPY"))
    for needed in ("setup.cfg", "pyproject.toml", "requirements-nodeps.txt"):
        assert needed in copied, needed
    # One list, not two copies: no Python dependency is named in the Dockerfile itself (apt's tzdata is not pip's).
    text = " ".join(f"{name} {args}" for name, args in instructions() if "apt-get" not in args).lower()
    for requirement in [*install_requires(), *nodeps_requirements()]:
        assert not re.search(rf"(?<![\w-]){re.escape(distribution(requirement))}(?![\w-])", text), requirement
    everything = (ROOT / "Dockerfile").read_text().lower()
    assert "llama-cpp-python" not in everything and "build-essential" not in everything and "cmake" not in everything
    assert len(arguments("FROM")) == 1  # every dependency is a wheel: no compiler stage


def test_every_package_of_setup_cfg_is_copied_into_the_image() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    packages = {line.strip() for line in config["options.packages.find"]["include"].splitlines()
                if line.strip() and "." not in line}
    copied = {args.split()[0] for args in arguments("COPY")}
    assert packages <= copied, packages - copied


def test_the_image_exposes_http_sip_and_the_rtp_range_of_the_settings() -> None:
    settings = load_settings(env=env())  # the image's settings: the defaults plus its ENV, checked as at start-up
    defaults = Settings()
    exposed = " ".join(arguments("EXPOSE")).split()
    assert f"{settings.server.port}/tcp" in exposed
    sip_ports = [defaults.sip.port + n for n in range(defaults.sip.workers)]
    assert [f"{port}/udp" for port in sip_ports] == [p for p in exposed if p.endswith("/udp") and "-" not in p]
    # sip.transport = tls listens on the same port numbers over TCP
    sip_tcp = [p for p in exposed if p.endswith("/tcp") and p != f"{settings.server.port}/tcp"]
    assert [f"{port}/tcp" for port in sip_ports] == sip_tcp
    rtp_end = defaults.sip.rtp_port_start + defaults.sip.workers * defaults.sip.rtp_ports_per_worker - 1
    assert f"{defaults.sip.rtp_port_start}-{rtp_end}/udp" in exposed
    assert settings.server.host == "0.0.0.0" and settings.sip.bind_address == "0.0.0.0"  # reachable from outside


def test_the_image_runs_as_a_non_root_user_with_its_data_in_a_volume() -> None:
    users = arguments("USER")
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith("0:")
    assert any("useradd" in args and users[-1] in args for args in arguments("RUN"))
    volumes = [v.strip("[]\" ") for args in arguments("VOLUME") for v in args.split()]
    settings = load_settings(env=env())
    for path in (settings.store.path, settings.store.recordings_dir, settings.models.dir):
        assert any(Path(path).is_relative_to(volume) for volume in volumes), path
    assert any(f"chown {users[-1]}" in args and volumes[0] in args for args in arguments("RUN"))


def test_the_healthcheck_asks_readyz_on_the_server_port_and_serve_runs() -> None:
    (healthcheck,) = arguments("HEALTHCHECK")
    assert "/readyz" in healthcheck and "PHONESCREEN_SERVER_PORT" in healthcheck
    assert env()["PHONESCREEN_SERVER_PORT"] == str(load_settings(env=env()).server.port)
    assert arguments("CMD")[-1] == '["phonescreen", "serve"]'


def test_compose_puts_the_server_behind_a_reverse_proxy_it_trusts_alone() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    app, proxy = compose["services"]["phonescreen"], compose["services"]["caddy"]
    assert app["build"] == "." and "8080" in [str(p) for p in app["expose"]]
    assert not any(str(p).split(":")[-1].startswith("8080") for p in app.get("ports", []))  # HTTP only via the proxy
    defaults = Settings()
    published = {str(p) for p in app["ports"]}
    rtp_end = defaults.sip.rtp_port_start + defaults.sip.rtp_ports_per_worker - 1
    assert f"{defaults.sip.port}:{defaults.sip.port}/udp" in published
    assert f"{defaults.sip.port}:{defaults.sip.port}/tcp" in published  # SIP over TLS
    assert f"{defaults.sip.rtp_port_start}-{rtp_end}:{defaults.sip.rtp_port_start}-{rtp_end}/udp" in published
    assert any(volume.endswith(":/data") for volume in app["volumes"])
    trusted = app["environment"]["PHONESCREEN_SERVER_TRUSTED_PROXIES"]
    assert ipaddress.ip_address(trusted) == ipaddress.ip_address(proxy["networks"]["edge"]["ipv4_address"])
    load_settings(env={key: str(value) for key, value in app["environment"].items() if "${" not in str(value)})
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "reverse_proxy phonescreen:8080" in caddyfile and "/metrics" in caddyfile
    assert any("Caddyfile" in volume for volume in proxy["volumes"])


@pytest.mark.parametrize("command", ["docker compose up -d --build", "docker build -t phonescreen ."])
def test_the_readme_shows_the_commands(command: str) -> None:
    assert command in (ROOT / "README.md").read_text()
