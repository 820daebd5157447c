"""Start-up and an unreachable Slack, as an operator meets them: `python -m bot` as a child
process against the fake Slack and Anthropic servers (tests/fakes), a fresh SQLite database.

Default: the time from spawning the process to the first 200 from /healthz, beside the goal
of 2 s; each run starts once on a new database (migrations included) and once more on the
migrated one. `--slack-down SECONDS`: Slack's API cannot be reached (a closed port) from the
start (or, with `--after-ready`, from the moment /healthz is ready); meanwhile a monitor reads
/healthz and /readyz every 5 s, /livez every 10 s, and Slack delivers a signed mention every
10 s. It prints the bot's log lines per minute (by level, and how many are traceback lines in
text or JSON), and how the mentions were answered.

    PYTHONPATH=. .venv/bin/python bench/startup.py [--runs 5]
    PYTHONPATH=. .venv/bin/python bench/startup.py --slack-down 60 [--after-ready]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
from slack_sdk.signature import SignatureVerifier

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 2.0
SECRET = "0123456789abcdef" * 2  # shaped like Slack's: 32 hex characters
SETTINGS_PREFIXES = ("SLACK_", "ANTHROPIC_", "CLAUDE_", "LOG_", "METRICS_", "DATABASE_URL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_env(slack_url: str, anthropic_url: str, folder: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(SETTINGS_PREFIXES)}
    env.update(
        PYTHONPATH=str(ROOT),
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=slack_url,
        ANTHROPIC_API_KEY="sk-test",
        ANTHROPIC_BASE_URL=anthropic_url,
        DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'bot.db'}",
        HOST="127.0.0.1",
        PORT=str(port),
        METRICS_PORT="0",
    )
    return env


class Bot:
    """One `python -m bot`, its stderr kept line by line."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.url = f"http://127.0.0.1:{env['PORT']}"
        self.lines: list[str] = []
        self.started = 0.0
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.started = time.perf_counter()
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "bot"),
            env=self.env,
            cwd=self.cwd,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._process is not None
        assert self._process.stderr is not None
        async for raw in self._process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    async def healthy(self, http: aiohttp.ClientSession, within: float = 60) -> float:
        """Seconds from spawning to the first 200 from /healthz."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.returncode is not None:
                raise RuntimeError("the bot exited:\n" + "\n".join(self.lines[-20:]))
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{self.url}/healthz") as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started
            await asyncio.sleep(0.01)
        raise RuntimeError("no healthy /healthz:\n" + "\n".join(self.lines[-20:]))

    async def stop(self) -> None:
        if self._process is None:
            return
        if self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._process.wait(), 30)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        if self._reader is not None:
            await self._reader


async def time_to_healthy(runs: int) -> None:
    fresh: list[float] = []
    migrated: list[float] = []
    async with FakeSlack() as slack, FakeAnthropic() as claude, aiohttp.ClientSession() as http:
        for run in range(runs + 1):  # the first run warms the disk cache and is not counted
            with tempfile.TemporaryDirectory() as name:
                folder = Path(name)
                for times in (fresh, migrated):
                    env = bot_env(slack.api_url, claude.base_url, folder, free_port())
                    bot = Bot(env, folder)
                    await bot.start()
                    try:
                        seconds = await bot.healthy(http)
                    finally:
                        await bot.stop()
                    if run:
                        times.append(seconds)
    print(f"Time from `python -m bot` to a 200 from /healthz ({runs} runs; goal {GOAL_SECONDS} s)")
    for label, times in (("new database", fresh), ("migrated database", migrated)):
        median = statistics.median(times)
        verdict = "within" if median <= GOAL_SECONDS else "over"
        print(
            f"  {label:<18} median {median:.2f} s (min {min(times):.2f}, max {max(times):.2f})"
            f"  {verdict} the goal"
        )


def signed_mention(n: int) -> tuple[str, dict[str, str]]:
    ts = f"{int(time.time())}.{n:06d}"
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0001",
            "api_app_id": "A0001",
            "event_id": f"EvBench{n:06d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": "T0001", "user_id": "U0BOT", "is_bot": True}],
            "event": {
                "type": "app_mention",
                "user": "U0USER",
                "text": f"<@U0BOT> question {n}",
                "ts": ts,
                "channel": "C0CHAN",
                "team": "T0001",
            },
        }
    )
    stamp = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=stamp, body=body)
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
    }
    return body, headers


async def every(seconds: float, action: object, until: float) -> None:
    assert callable(action)
    while time.monotonic() < until:
        await action()
        await asyncio.sleep(seconds)


async def slack_down(seconds: float, after_ready: bool) -> None:
    """Log lines while Slack's API cannot be reached, with probes and mentions meanwhile."""
    dead = f"http://127.0.0.1:{free_port()}/api/"  # nothing listens there
    answers: list[tuple[int, float]] = []
    async with FakeSlack() as slack, FakeAnthropic() as claude, aiohttp.ClientSession() as http:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            env = bot_env(slack.api_url if after_ready else dead, claude.base_url, folder, 0)
            env["PORT"] = str(free_port())
            bot = Bot(env, folder)
            await bot.start()
            if after_ready:
                await bot.healthy(http)
                await slack.close()  # from now on, connections to Slack are refused
            else:
                await livez(http, bot.url)
            first_line = len(bot.lines)
            count = 0

            async def probe(path: str) -> None:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{bot.url}{path}") as response:
                        await response.read()

            async def mention() -> None:
                nonlocal count
                count += 1
                body, headers = signed_mention(count)
                started = time.perf_counter()
                try:
                    async with http.post(
                        f"{bot.url}/slack/events", data=body, headers=headers
                    ) as response:
                        await response.read()
                        status = response.status
                except aiohttp.ClientError:
                    status = 0
                answers.append((status, time.perf_counter() - started))

            until = time.monotonic() + seconds
            await asyncio.gather(
                every(5, lambda: probe("/healthz"), until),
                every(5, lambda: probe("/readyz"), until),
                every(10, lambda: probe("/livez"), until),
                every(10, mention, until),
            )
            lines = bot.lines[first_line:]
            await bot.stop()
    report_lines(lines, seconds, after_ready)
    statuses = Counter(status for status, _ in answers)
    slowest = max(elapsed for _, elapsed in answers)
    print(f"  mentions: {dict(statuses)} (HTTP status: count), slowest answer {slowest:.2f} s")


async def livez(http: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{url}/livez") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.01)
    raise RuntimeError("the bot never served /livez")


def report_lines(lines: list[str], seconds: float, after_ready: bool) -> None:
    levels: Counter[str] = Counter()
    traceback_lines = 0
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            levels[str(record.get("level") or record.get("levelname") or "?")] += 1
            info = str(record.get("exc_info") or "")
            traceback_lines += info.count("\n") + 1 if info else 0
            continue
        words = line.split()
        level = next((w for w in words[:4] if w.isupper() and w.isalpha()), "")
        if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            levels[level] += 1
        else:
            levels["(traceback)"] += 1
            traceback_lines += 1
    when = "after /healthz was ready" if after_ready else "from the start"
    per_minute = len(lines) * 60 / seconds
    print(f"Slack unreachable {when}, {seconds:.0f} s")
    print(f"  {len(lines)} log lines on stderr, {per_minute:.0f} a minute: {dict(levels)}")
    print(f"  traceback lines (in text, or inside JSON lines): {traceback_lines}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--slack-down", type=float, metavar="SECONDS")
    parser.add_argument("--after-ready", action="store_true")
    args = parser.parse_args()
    if args.slack_down:
        asyncio.run(slack_down(args.slack_down, args.after_ready))
    else:
        asyncio.run(time_to_healthy(args.runs))


if __name__ == "__main__":
    main()
