"""A throwaway PostgreSQL server for the tests: started once per session, a database per test.

The server is the machine's own PostgreSQL (found on PATH, else in Debian's
/usr/lib/postgresql/*/bin), initialised in a temporary folder (in memory, /dev/shm, when
there is room), listening on 127.0.0.1 only, on a free port, with durability switched off
for speed. It is stopped (`pg_ctl stop -m immediate`) and its folder deleted when the
session ends; should the tests' process die first (killed, timed out), a watchdog process
does that instead.

initdb and postgres refuse to run as root. As root (CI) the server runs as the `postgres`
system user that Debian's package creates (else `nobody`): initdb and pg_ctl are started
with that user's uid and gid, in a folder that user owns. As anyone else it runs as them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

_T = TypeVar("_T")

DEBIAN_BIN_DIRS = "/usr/lib/postgresql/*/bin"
SERVER_USERS = ("postgres", "nobody")  # who runs the server when the tests run as root
START_TIMEOUT_S = 60
SHARED_MEMORY = "/dev/shm"  # noqa: S108 - a tmpfs on Linux: the data folder goes there if it can
SUPERUSER = "postgres"

# Appended to postgresql.conf: loopback only, no unix socket, nothing waits for the disk.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "timezone": "'UTC'",
    "max_wal_size": "'128MB'",  # the WAL may be in memory: checkpoint often, they are cheap
    "min_wal_size": "'32MB'",
    "max_connections": "200",
}


# Runs beside the tests: when their process closes the pipe or dies, stops the server and
# deletes its folder (nothing left running, whatever happened to the tests).
_WATCHDOG = """\
import shutil, subprocess, sys
pg_ctl, data, root, uid, gid = sys.argv[1:]
sys.stdin.buffer.read()
who = {} if uid == "-" else {"user": int(uid), "group": int(gid), "extra_groups": []}
stop = [pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"]
subprocess.run(stop, capture_output=True, check=False, **who)
shutil.rmtree(root, ignore_errors=True)
"""


class PostgresUnavailable(Exception):
    """No PostgreSQL to start here (binaries or driver missing); the message says what to do."""


def find_bin_dir() -> Path:
    """The folder holding initdb, pg_ctl and postgres: PATH first, then Debian's folders."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        # /usr/local/bin/initdb may be a link: pg_ctl must come from the folder of the real one.
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(Path("/").glob(DEBIAN_BIN_DIRS.lstrip("/")), key=_version, reverse=True)
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise PostgresUnavailable(
        f"PostgreSQL not found (no initdb on PATH or in {DEBIAN_BIN_DIRS}): "
        "install it (Debian: apt-get install postgresql), or run with TEST_DATABASES=sqlite"
    )


def _version(folder: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", folder.parent.name))


@dataclass(frozen=True)
class _RunAs:
    """Who runs initdb and pg_ctl: the tests' own user (no uid: nothing to switch) or, when
    the tests run as root, an unprivileged user whose uid and gid the commands switch to."""

    name: str
    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_this_process(cls) -> _RunAs:
        if os.geteuid() != 0:
            try:
                return cls(pwd.getpwuid(os.geteuid()).pw_name)
            except KeyError:  # a uid without a name (some containers)
                return cls(str(os.geteuid()))
        for name in SERVER_USERS:
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                return cls(name, entry.pw_uid, entry.pw_gid)
        raise PostgresUnavailable(
            f"running as root, and none of the users {SERVER_USERS} exists to run PostgreSQL"
        )

    def subprocess_args(self) -> dict[str, Any]:
        if self.uid is None:
            return {}
        # What runuser -u does, without PAM: drop root's groups, then its gid and uid.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def own(self, path: Path) -> None:
        if self.uid is not None:
            os.chown(path, self.uid, self.gid if self.gid is not None else -1)


def _temp_parent(run_as: _RunAs) -> Path:
    """Where the server's folder goes: in memory (/dev/shm) when there is room, where
    creating a database takes a few ms instead of tens; else the temp folder. As root, only
    a folder that the server's user can reach."""
    candidates = [Path(SHARED_MEMORY), Path(tempfile.gettempdir()), Path("/tmp")]  # noqa: S108
    for folder in candidates:
        with contextlib.suppress(OSError):
            roomy = folder != Path(SHARED_MEMORY) or shutil.disk_usage(folder).free >= 1 << 30
            usable = folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)
            if roomy and usable and (run_as.uid is None or _others_can_reach(folder)):
                return folder
    raise PostgresUnavailable(f"no folder for the server's files among {candidates}")


def _others_can_reach(folder: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in (folder, *folder.parents))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _AdminLoop:
    """One asyncpg connection to the `postgres` database, on an event loop in its own thread,
    so that sync fixtures can create databases without touching the tests' event loop."""

    def __init__(self, **connect: Any) -> None:
        import asyncpg  # imported here: SQLite-only runs need no asyncpg

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="postgres-admin", daemon=True
        )
        self._thread.start()
        try:
            self._conn = self.run(asyncpg.connect(**connect))
        except BaseException:
            self._stop_loop()
            raise
        self.server_version: int = self._conn.get_server_version().major

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(START_TIMEOUT_S)

    def execute(self, sql: str) -> None:
        self.run(self._conn.execute(sql))

    def close(self) -> None:
        try:
            self.run(self._conn.close(timeout=5))
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class PostgresServer:
    """A running throwaway server; `create_database()` gives each test an empty database."""

    def __init__(self, bin_dir: Path, run_as: _RunAs, root: Path) -> None:
        self.bin_dir = bin_dir
        self.run_as = run_as
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = 0
        self.password = secrets.token_hex(16)
        self._conf = ""  # postgresql.conf as initdb wrote it
        self._admin: _AdminLoop | None = None
        self._names = itertools.count(1)
        self._running = False
        self._watchdog: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls) -> PostgresServer:
        try:
            import asyncpg  # noqa: F401 - only checking that it is there
        except ImportError:
            raise PostgresUnavailable(
                "the asyncpg driver is not installed: .venv/bin/pip install -e '.[dev]'"
            ) from None
        bin_dir = find_bin_dir()
        run_as = _RunAs.for_this_process()
        root = Path(tempfile.mkdtemp(prefix="tests-postgres-", dir=_temp_parent(run_as)))
        server = cls(bin_dir, run_as, root)
        try:
            server._start_watchdog()
            run_as.own(root)
            server._initdb()
            server._start()
            server._admin = _AdminLoop(
                host="127.0.0.1",
                port=server.port,
                user=SUPERUSER,
                password=server.password,
                database="postgres",
            )
        except BaseException:
            server.stop()
            raise
        return server

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; its name is unique for the server's lifetime."""
        assert self._admin is not None
        name = f"test_{next(self._names)}"
        # FILE_COPY (the default before 15) copies template1's files; 15's WAL_LOG also writes
        # them all into the WAL, which takes longer.
        strategy = " STRATEGY FILE_COPY" if self._admin.server_version >= 15 else ""
        self._admin.execute(f'CREATE DATABASE "{name}"{strategy}')
        return name

    def drop_database(self, name: str) -> None:
        assert self._admin is not None
        force = " WITH (FORCE)" if self._admin.server_version >= 13 else ""
        self._admin.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')

    def stop(self) -> None:
        """Stop the server at once (nothing in it is worth keeping) and delete its folder."""
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                admin.close()
        if self._running:
            self._running = False
            self._pg_ctl("stop", "-w", "-m", "immediate", check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            assert watchdog.stdin is not None
            watchdog.stdin.close()  # its own stop finds nothing left to do
            watchdog.wait(START_TIMEOUT_S)

    def _start_watchdog(self) -> None:
        ids = ["-" if i is None else str(i) for i in (self.run_as.uid, self.run_as.gid)]
        pg_ctl = str(self.bin_dir / "pg_ctl")
        self._watchdog = subprocess.Popen(  # noqa: S603 - our own arguments
            [sys.executable, "-I", "-c", _WATCHDOG, pg_ctl, str(self.data), str(self.root), *ids],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,  # Ctrl-C in the terminal is for pytest, which cleans up
        )

    def _initdb(self) -> None:
        password_file = self.root / "password"
        password_file.write_text(self.password)
        self.run_as.own(password_file)
        self._run(
            self.bin_dir / "initdb",
            *("-D", str(self.data), "-U", SUPERUSER, f"--pwfile={password_file}"),
            *("--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"),
        )
        password_file.unlink()
        self._conf = (self.data / "postgresql.conf").read_text()

    def _start(self) -> None:
        # A port found free can be taken before the server binds it: then try another.
        for attempt in range(3):
            self.port = _free_port()
            settings = {**SETTINGS, "port": str(self.port)}
            (self.data / "postgresql.conf").write_text(
                self._conf + "".join(f"\n{key} = {value}" for key, value in settings.items())
            )
            result = self._pg_ctl("start", "-w", "-t", str(START_TIMEOUT_S), "-l", str(self.log))
            if result.returncode == 0:
                self._running = True
                return
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            if "could not bind" not in log or attempt == 2:
                raise RuntimeError(
                    f"PostgreSQL did not start: {result.stdout}{result.stderr}\n{log[-3000:]}"
                )
            self.log.unlink()

    def _pg_ctl(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return self._run(self.bin_dir / "pg_ctl", "-D", str(self.data), *args, check=check)

    def _run(self, *command: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        # No PG* variables from the caller's environment: everything is given on the command.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"}
        result = subprocess.run(  # noqa: S603 - our own arguments
            [str(part) for part in command],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S + 30,
            check=False,
            **self.run_as.subprocess_args(),
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(map(str, command))} failed as {self.run_as.name}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result


def wanted_backends() -> list[str]:
    """The backends for tests marked both_databases: TEST_DATABASES=sqlite,postgresql."""
    known = ("sqlite", "postgresql")
    names = [n.strip() for n in os.environ.get("TEST_DATABASES", ",".join(known)).split(",")]
    names = [n for n in names if n]
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        raise ValueError(f"TEST_DATABASES={os.environ['TEST_DATABASES']!r}: use {known}")
    return names
