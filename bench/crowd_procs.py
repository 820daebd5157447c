"""The bot as real child processes for bench/crowd.py: `python -m bot` with its settings in the
environment, readiness (GET /readyz), CPU time and peak memory from /proc, /metrics, logs."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.config import Settings
from tests.rig import SIGNING_SECRET

REPO = Path(__file__).resolve().parent.parent
SETTING_NAMES = {name.upper() for name in Settings.model_fields}
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 30.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


METRICS_TOKEN = "bench-metrics-token-0123456789"


def bot_env(slack_api_url: str, anthropic_base_url: str, database_url: str) -> dict[str, str]:
    """This process's environment without any of the bot's own settings, plus the bench's."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack_api_url,
        ANTHROPIC_API_KEY="sk-test",
        ANTHROPIC_BASE_URL=anthropic_base_url,
        DATABASE_URL=database_url,
        HOST="127.0.0.1",
        LOG_FORMAT="json",
        # The fake Slack allows no burst of posts per channel (as bench/slack_scheduler.py).
        SLACK_POST_BURST="1",
        # High enough that no one person is refused; MAX_CONCURRENT_REQUESTS stays the default.
        USER_REQUESTS_PER_MINUTE="1000",
        USER_MAX_CONCURRENT_REQUESTS="1000",
        # /metrics on the bot's own port for this token (each replica has its own port).
        METRICS_TOKEN=METRICS_TOKEN,
    )
    return env


async def migrate(env: dict[str, str], cwd: Path) -> None:
    """`python -m bot migrate` once, before any replica starts."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "bot", "migrate"),
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"python -m bot migrate failed: {out.decode(errors='replace')}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Sample:
    cpu_ticks: int  # utime + stime
    hwm_kb: int  # VmHWM: peak resident set size so far


class BotProcess:
    """One `python -m bot serve`; its output goes to `log`."""

    def __init__(self, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                env={**env, "PORT": str(self.port)},
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    async def ready(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bot exited with {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{self.url}/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"bot not ready within {READY_TIMEOUT_S:.0f} s:\n{self.tail()}")

    def sample(self) -> Sample:
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        hwm = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
        return Sample(int(fields[11]) + int(fields[12]), int(hwm))

    async def metrics(self, http: aiohttp.ClientSession) -> str:
        headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        async with http.get(f"{self.url}/metrics", headers=headers) as resp:
            return await resp.text() if resp.status == 200 else ""

    async def stop(self) -> None:
        """SIGTERM (a graceful shutdown), then SIGKILL after STOP_GRACE_S."""
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.proc.wait, STOP_GRACE_S)
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def log_summary(self, top: int = 4) -> str:
        """Lines per level and the commonest warnings and errors."""
        levels: Counter[str] = Counter()
        worst: Counter[str] = Counter()
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
                level, message = str(record.get("level")), str(record.get("message"))
            except (ValueError, AttributeError):
                level, message = "not json", line
            levels[level] += 1
            if level not in ("INFO", "DEBUG"):
                worst[f"{level} {message[:110]}"] += 1
        counts = ", ".join(f"{n} {level}" for level, n in levels.most_common())
        common = "".join(f"\n      {n}× {text}" for text, n in worst.most_common(top))
        return f"{counts or 'empty'}{common}"


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL it if the bench dies first, however it dies."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def keep_logs(folder: Path, keep: Path | None, prefix: str) -> None:
    """Copy the bots' logs out of a run's folder before it is deleted (`--logs`)."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        for log in folder.glob("*.log"):
            shutil.copy(log, keep / f"{prefix}{log.name}")


def histogram_p99(texts: list[str], prefix: str) -> tuple[bool, float | None]:
    """(found, p99) of the histograms named `prefix…` summed over every exposition in `texts`,
    interpolated within buckets as Prometheus' histogram_quantile does; None when empty."""
    buckets: dict[float, float] = defaultdict(float)
    found = False
    for text in texts:
        for family in text_string_to_metric_families(text):
            if family.type != "histogram" or not family.name.startswith(prefix):
                continue
            found = True
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    buckets[float(sample.labels["le"])] += sample.value
    return found, quantile(0.99, buckets)


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """q-quantile of cumulative buckets (upper bound -> count)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] == 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == float("inf"):
                return lower
            share = (rank - below) / (buckets[bound] - below) if buckets[bound] > below else 1
            return lower + (bound - lower) * share
        lower, below = bound, buckets[bound]
    return lower
