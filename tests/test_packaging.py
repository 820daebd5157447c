"""Running it: the Dockerfile, .dockerignore, compose.yaml and `make run`'s driver install.

There is no Docker daemon here, so nothing is built or started: the files are read the way
Docker and Compose read them and checked for what matters (the image installs `.[postgres]`
from the repo's own files and runs `python -m bot` as a non-root user; compose runs two
replicas on PostgreSQL 16, each probing /livez). The health checks themselves are run, as
written, against the bot's real HTTP routes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from sqlalchemy.engine import make_url

from bot.app import FINALISE_SECONDS
from bot.config import DatabaseSettings, Settings
from bot.server import Health, web_app

ROOT = Path(__file__).resolve().parents[1]
# What the image needs from the checkout: the package, its build file and the readme that
# pyproject.toml names, and what bot/store/migrate.py reads beside the package at start-up.
NEEDED = ("pyproject.toml", "bot", "migrations", "alembic.ini")
ROOT_USERS = ("root", "0")


# ----- reading the files as Docker and Compose do


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: continuations joined, comments dropped."""
    found: list[tuple[str, str]] = []
    current = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comment lines, inside a continuation too
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        instruction, _, arguments = (current + line).partition(" ")
        found.append((instruction.upper(), arguments.strip()))
        current = ""
    assert not current, "the Dockerfile ends inside a continuation"
    return found


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a RUN line, as words (quotes respected, split at && || ; |)."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", "||", ";", "|"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [words for words in commands if words]


def pip_install_targets(words: list[str]) -> list[str] | None:
    """What a `pip install` / `python -m pip install` command installs; None if it is not one."""
    for at, word in enumerate(words[:-1]):
        if re.fullmatch(r"pip3?(\.\d+)?", Path(word).name) and words[at + 1] == "install":
            return [w for w in words[at + 2 :] if not w.startswith("-")]
    return None


def copy_sources(arguments: str) -> list[str]:
    words = [w for w in shlex.split(arguments) if not w.startswith("--")]
    return [os.path.normpath(w).rstrip("/") for w in words[:-1]]


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `path` (relative, with /) out of the build context: the
    last matching pattern decides (`!` re-includes); a pattern matching a folder takes its
    contents; `*` and `?` stay within one path segment, `**` spans any."""
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        if _glob(pattern.removeprefix("!").strip().strip("/")).fullmatch(path):
            excluded = not negate
    return excluded


def _glob(pattern: str) -> re.Pattern[str]:
    regex, at = "", 0
    while at < len(pattern):
        if pattern.startswith("**/", at):
            regex, at = regex + "(?:.*/)?", at + 3
        elif pattern.startswith("**", at):
            regex, at = regex + ".*", at + 2
        elif pattern[at] in "*?":
            regex, at = regex + ("[^/]*" if pattern[at] == "*" else "[^/]"), at + 1
        else:
            regex, at = regex + re.escape(pattern[at]), at + 1
    return re.compile(regex + "(?:/.*)?")


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def seconds(duration: str | int) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(duration))
    return sum(float(n) * units[u] for n, u in parts) if parts else float(duration)


def image_cmd() -> list[str]:
    [cmd] = [args for instruction, args in dockerfile() if instruction == "CMD"]
    words = json.loads(cmd)
    assert isinstance(words, list)
    return [str(w) for w in words]


def runs(service: dict[str, Any]) -> list[str]:
    """The command a service built from this repo runs (its own, else the image's CMD)."""
    command = service.get("command")
    if command is None:
        return image_cmd()
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command]


def bot_services() -> dict[str, dict[str, Any]]:
    """The services built from this repo's Dockerfile that run the bot."""
    services = compose()["services"]
    return {
        n: s for n, s in services.items() if "build" in s and runs(s) == ["python", "-m", "bot"]
    }


def db_service() -> tuple[str, dict[str, Any]]:
    [(name, db)] = [
        (name, s)
        for name, s in compose()["services"].items()
        if str(s.get("image", "")).startswith("postgres")
    ]
    return name, db


# ----- the image


def test_the_image_is_python_3_11_slim_and_runs_python_m_bot_on_port_3000() -> None:
    steps = dockerfile()
    froms = [args for instruction, args in steps if instruction == "FROM"]
    assert froms[-1].split()[0] == "python:3.11-slim"
    assert image_cmd() == ["python", "-m", "bot"]  # exec form: python gets the SIGTERM
    exposed = [args.split() for instruction, args in steps if instruction == "EXPOSE"]
    assert any(port.split("/")[0] == "3000" for ports in exposed for port in ports)


def test_the_image_installs_the_project_with_the_postgres_extra_from_the_repo() -> None:
    steps = dockerfile()
    copied: set[str] = set()
    installs = []
    for instruction, args in steps:
        if instruction in ("COPY", "ADD"):
            assert "--from" not in args, "the project comes from the checkout"
            copied.update(copy_sources(args))
        elif instruction == "RUN":
            for words in shell_commands(args):
                targets = pip_install_targets(words)
                if targets is not None and {".[postgres]", "./[postgres]"} & set(targets):
                    installs.append(set(copied))
    assert installs, "no RUN pip install '.[postgres]'"
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    for name in (*NEEDED, readme):
        # What pip builds the project from is in the image before the install runs.
        assert "." in installs[-1] or name in installs[-1], f"{name} is not copied before install"
        assert (ROOT / name).exists()


def test_the_image_runs_as_a_user_it_creates_who_is_not_root() -> None:
    steps = dockerfile()
    users = [(at, args.split(":")[0]) for at, (i, args) in enumerate(steps) if i == "USER"]
    assert users, "no USER: the bot would run as root"
    at, user = users[-1]
    assert user not in ROOT_USERS
    [cmd_at] = [n for n, (instruction, _) in enumerate(steps) if instruction == "CMD"]
    assert at < cmd_at
    created = []
    for instruction, args in steps[:at]:
        if instruction == "RUN":
            for words in shell_commands(args):
                if words and words[0] in ("useradd", "adduser"):
                    created.append(words)
    key = "--uid" if user.isdigit() else None

    def creates(words: list[str]) -> bool:
        if key is None:
            return words[-1] == user
        return any(
            w in ("--uid", "-u") and words[n + 1] == user for n, w in enumerate(words[:-1])
        ) or any(w == f"--uid={user}" for w in words)

    assert any(creates(words) for words in created), f"no RUN useradd creates user {user}"


def test_dockerignore_keeps_secrets_and_state_out_but_not_what_the_build_needs() -> None:
    patterns = dockerignore_patterns()
    for kept_out in (".env", ".venv/bin/python", ".git/HEAD", "data/bot.db", "bot.db-wal"):
        assert dockerignored(kept_out, patterns), kept_out
    needed = [ROOT / "README.md", *(ROOT / name for name in NEEDED)]
    files = [p for n in needed for p in ([n] if n.is_file() else n.rglob("*")) if p.is_file()]
    files = [p for p in files if "__pycache__" not in p.parts]
    assert any(p.name == "prices.toml" for p in files)
    for path in files:
        relative = path.relative_to(ROOT).as_posix()
        assert not dockerignored(relative, patterns), f"{relative} would be missing in the build"


def test_our_dockerignore_matching_is_not_vacuous() -> None:
    assert dockerignored("a/__pycache__/x.pyc", ["**/__pycache__/"])
    assert dockerignored("tests/test_x.py", ["tests/"])
    assert not dockerignored("bot/tests_helper.py", ["tests/"])
    assert not dockerignored(".env.example", [".env.*", "!.env.example"])
    assert not dockerignored("data/bot.db", ["*.db"])  # anchored at the top, as Docker does
    assert dockerignored("data/bot.db", ["**/*.db"])


# ----- the health checks, run as written against the bot's routes


@pytest.fixture
async def bot_routes() -> AsyncIterator[int]:
    """The bot's real HTTP routes before anything is ready (/livez is all there is to pass)."""
    runner = web.AppRunner(web_app(Health(), http_events=True))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][1]
    await runner.cleanup()


@pytest.fixture
async def dead_livez() -> AsyncIterator[int]:
    async def fail(_request: web.Request) -> web.Response:
        return web.json_response({"status": "wedged"}, status=503)

    app = web.Application()
    app.router.add_get("/livez", fail)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][1]
    await runner.cleanup()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_check(test: list[str], port: int) -> int:
    """Run a health check (Docker's CMD / CMD-SHELL forms) aimed at `port` instead of 3000."""
    kind, *command = test
    command = [c.replace(":3000/", f":{port}/") for c in command]
    env = {**os.environ, "PORT": str(port)}
    if kind == "CMD-SHELL":
        argv = ["/bin/sh", "-c", re.sub(r"^python3?\b", shlex.quote(sys.executable), command[0])]
    else:
        assert kind == "CMD"
        assert command[0] in ("python", "python3"), "the image has python, not curl or wget"
        argv = [sys.executable, *command[1:]]
    process = await asyncio.create_subprocess_exec(*argv, env=env)
    return await asyncio.wait_for(process.wait(), 30)


def dockerfile_healthcheck() -> list[str]:
    [check] = [args for instruction, args in dockerfile() if instruction == "HEALTHCHECK"]
    command = check[check.index("CMD ") + len("CMD ") :]
    return ["CMD", *json.loads(command)]


async def test_the_image_healthcheck_probes_livez_with_urllib(
    bot_routes: int, dead_livez: int
) -> None:
    test = dockerfile_healthcheck()
    assert "/livez" in " ".join(test) and "urllib" in " ".join(test)
    assert not {"curl", "wget"} & set(re.findall(r"\w+", " ".join(test)))
    assert await run_check(test, bot_routes) == 0  # alive though not ready
    assert await run_check(test, dead_livez) != 0
    assert await run_check(test, free_port()) != 0


# ----- compose


def test_compose_runs_postgresql_16_with_a_volume_and_a_pg_isready_healthcheck() -> None:
    _, db = db_service()
    assert str(db["image"]).split(":")[1].startswith("16")
    test = db["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))
    volumes = compose().get("volumes") or {}
    mounts = [str(v).split(":") for v in db["volumes"]]
    assert any(src in volumes and dst == "/var/lib/postgresql/data" for src, dst, *_ in mounts)


def test_compose_runs_two_bot_replicas_of_one_image_on_the_postgresql_service() -> None:
    db_name, db = db_service()
    services = bot_services()
    replicas = sum(int((s.get("deploy") or {}).get("replicas", 1)) for s in services.values())
    assert replicas >= 2
    assert len({str(s.get("image")) for s in services.values()}) == 1, "one image for all"
    published: list[str] = []
    db_env = environment(db)
    for name, service in services.items():
        build = service["build"]
        assert os.path.normpath(build if isinstance(build, str) else build["context"]) == "."
        url = make_url(environment(service)["DATABASE_URL"])
        assert url.drivername == "postgresql+asyncpg", name
        assert (url.host, url.port or 5432) == (db_name, 5432)
        assert (url.username, url.password, url.database) == (
            db_env["POSTGRES_USER"],
            db_env["POSTGRES_PASSWORD"],
            db_env["POSTGRES_DB"],
        )
        DatabaseSettings(database_url=url.render_as_string(hide_password=False))  # valid for us
        assert service["depends_on"][db_name]["condition"] == "service_healthy"
        assert service.get("restart") in ("always", "unless-stopped", "on-failure")
        env_files = service.get("env_file")
        assert ".env" in ([env_files] if isinstance(env_files, str) else env_files)
        assert environment(service).get("PORT", "3000") == "3000"  # what the ports map to
        published += [str(p).rsplit(":", 1)[0] for p in service.get("ports", [])]
        # Room to finish answers on SIGTERM before Docker kills the container.
        grace = Settings.model_fields["shutdown_grace_seconds"].default
        assert seconds(service.get("stop_grace_period", "10s")) >= grace + FINALISE_SECONDS
    assert len(published) == len(set(published)), "two replicas cannot publish one host port"


def test_compose_migrates_once_before_the_replicas_start() -> None:
    # Two processes migrating an empty database at the same moment collide and one exits.
    db_name, _ = db_service()
    services = compose()["services"]
    [(name, migrate)] = [
        (n, s) for n, s in services.items() if "build" in s and runs(s)[-2:] == ["bot", "migrate"]
    ]
    assert runs(migrate) == ["python", "-m", "bot", "migrate"]
    assert migrate["depends_on"][db_name]["condition"] == "service_healthy"
    assert (
        environment(migrate)["DATABASE_URL"]
        == environment(next(iter(bot_services().values())))["DATABASE_URL"]
    )
    assert str(migrate.get("restart", "no")) == "no"
    for bot, service in bot_services().items():
        assert service["depends_on"][name]["condition"] == "service_completed_successfully", bot


async def test_compose_healthchecks_probe_livez(bot_routes: int, dead_livez: int) -> None:
    for name, service in bot_services().items():
        test = service["healthcheck"]["test"]
        test = ["CMD-SHELL", test] if isinstance(test, str) else test
        assert "/livez" in " ".join(test), name
        assert await run_check(test, bot_routes) == 0, name
        assert await run_check(test, dead_livez) != 0, name


# ----- make run on PostgreSQL


@pytest.fixture
def make_dir(tmp_path: Path) -> Path:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def planned_install(folder: Path, target: str, database_url: str | None) -> str:
    """The pip install line `make -n <target>` would run in a fresh checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    env.pop("DATABASE_URL", None)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    result = subprocess.run(  # noqa: S603 - our own arguments
        ["make", "-n", target],  # noqa: S607 - make from PATH, as a developer runs it
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    [line] = [line for line in result.stdout.splitlines() if "pip install" in line]
    return line


@pytest.mark.parametrize("target", ["run", "migrate"])
def test_make_installs_the_postgresql_driver_when_database_url_is_postgresql(
    make_dir: Path, target: str
) -> None:
    postgres = "postgresql+asyncpg://bot:bot@db:5432/bot"
    assert "'.[postgres]'" in planned_install(make_dir, target, postgres)
    assert "[postgres]" not in planned_install(make_dir, target, None)
    assert "[postgres]" not in planned_install(make_dir, target, "sqlite+aiosqlite:///x.db")


def test_make_reads_database_url_from_dot_env_and_the_environment_wins(make_dir: Path) -> None:
    (make_dir / ".env").write_text(
        'SLACK_BOT_TOKEN=xoxb-1\nDATABASE_URL="postgresql+asyncpg://u:p@h/db"\nPORT=3000\n'
    )
    assert "'.[postgres]'" in planned_install(make_dir, "run", None)
    assert "[postgres]" not in planned_install(make_dir, "run", "sqlite+aiosqlite:///x.db")
    (make_dir / ".env").write_text("DATABASE_URL=sqlite+aiosqlite:///./data/bot.db\n")
    assert "[postgres]" not in planned_install(make_dir, "run", None)
