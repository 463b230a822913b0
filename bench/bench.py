#!/usr/bin/env python3
"""infra-tools benchmark: our AOT tools against s3cmd and rclone on a throwaway local S3 server (Ceph RGW).

One run starts the server, generates a site-like corpus, uploads it, and then, alternating the tools within
every scenario and repetition, times each command with /usr/bin/time (peak RSS) and a monotonic clock (wall):

  pull   content-pull vs `s3cmd sync --delete-removed` vs `rclone sync` (defaults, and --transfers 16
         --checkers 16): initial pull into an empty directory, no-change re-pull, re-pull after 1 % of the
         objects changed, after 1 % were deleted; every tree is checked against the corpus after every run
  push   `backup push` vs `s3cmd sync` vs `rclone sync` local -> S3: initial and no-change; every pushed
         prefix is checked against the corpus (keys and MD5 ETags)
  start  median wall time of `--version` (hyperfine), peak RSS, binary sizes
  cron   bench/cron.sh (idle RSS with 20 jobs, start lateness p50/p99)

It prints the medians and ratios (ours / theirs) and writes them, with the machine, the versions and the date,
into the generated block of bench/RESULTS.md (or --output FILE). Exit code 0 only if every command succeeded
and every tree was identical to the corpus. It never fails because a time is slow: targets are reported, not
enforced.

Python standard library only (Debian's python3, which s3cmd already needs).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import json
import os
import platform
import random
import re
import shutil
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "artifacts" / "bin"


def begin_marker(label: str) -> str:
    return f"<!-- bench/run.sh: generated results begin: {label} (rewritten by the next run of this kind) -->"


def end_marker(label: str) -> str:
    return f"<!-- bench/run.sh: generated results end: {label} -->"


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A failure that stops the run, with a message that says what to do."""


# ---------------------------------------------------------------------------------------------------------------
# corpus


@dataclass
class Corpus:
    """The files that should be in S3 and in every pulled tree: relative path -> (sha256, md5, size)."""

    directory: Path
    files: dict[str, tuple[str, str, int]] = field(default_factory=dict)

    def add(self, relative: str, data: bytes) -> None:
        path = self.directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.files[relative] = (hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(), len(data))

    def digests(self) -> dict[str, str]:
        """relative path -> sha256: what a pulled tree must hold."""
        return {k: sha for k, (sha, _, _) in self.files.items()}

    @property
    def total_bytes(self) -> int:
        return sum(size for _, _, size in self.files.values())


def random_size(rng: random.Random) -> int:
    # 0.5 to 64 KB, skewed towards small files like a site's pages, styles and thumbnails: mean ~18.6 KB,
    # so 5,000 files are ~90 MB.
    return 512 + int((64 * 1024 - 512) * rng.random() ** 2.5)


EXTENSIONS = ["html", "html", "html", "css", "js", "png", "jpg", "svg", "json", "xml"]


def small_size(rng: random.Random) -> int:
    # 200 bytes to 16 KB, skewed the same way: mean ~4.7 KB, so 100,000 files are ~470 MB (the --scale corpus).
    return 200 + int((16 * 1024 - 200) * rng.random() ** 2.5)


def generate_corpus(directory: Path, files: int, directories: int, seed: int, size=random_size) -> Corpus:
    rng = random.Random(seed)
    corpus = Corpus(directory)
    sections = max(1, min(10, directories))
    for i in range(files):
        leaf = i % directories
        relative = f"section-{leaf % sections:02d}/part-{leaf // sections:02d}/page-{i:05d}.{EXTENSIONS[i % len(EXTENSIONS)]}"
        corpus.add(relative, rng.randbytes(size(rng)))
    return corpus


def tree_digest(directory: Path) -> dict[str, str]:
    """relative path -> sha256 of every regular file below directory (directories and mtimes are not compared)."""
    result = {}
    for dirpath, _, filenames in os.walk(directory):
        for name in filenames:
            full = Path(dirpath) / name
            if full.is_symlink() or not full.is_file():
                result[str(full.relative_to(directory))] = "not a regular file"
                continue
            result[str(full.relative_to(directory))] = hashlib.sha256(full.read_bytes()).hexdigest()
    return result


def compare(expected: dict[str, str], actual: dict[str, str]) -> str | None:
    """None when equal, else a short description of the first differences."""
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    different = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
    if not (missing or extra or different):
        return None
    parts = []
    for label, keys in (("missing", missing), ("extra", extra), ("different", different)):
        if keys:
            parts.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------------------------
# running and measuring commands


@dataclass
class Sample:
    wall: float  # seconds, monotonic clock around /usr/bin/time
    rss_kb: int  # peak RSS from /usr/bin/time %M
    cpu: float  # user + system CPU seconds from /usr/bin/time %U %S (less sensitive to a busy machine than wall time)
    requests: int | None = None  # HTTP requests the S3 server logged while the command ran (RequestLog), None if not counted
    server_cpu: float | None = None  # CPU seconds of the S3 server's daemons while the command ran (CpuMeter), None if not measured
    proxy_cpu: float | None = None  # CPU seconds of the delay proxy's thread while the command ran (--rtt), None without it


class Runner:
    def __init__(self, work: Path, requests: "RequestLog | None" = None):
        self.work = work
        self.failures: list[str] = []
        self.timed_out: list[str] = []
        self._count = 0
        self.requests = requests
        self.server_cpu: CpuMeter | None = None
        self.proxy_cpu: CpuMeter | None = None

    def run(self, argv: list[str], env: dict[str, str], what: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        if check and result.returncode != 0:
            raise BenchError(f"{what} failed (exit {result.returncode}): {argv[0]} ...\n{tail(result.stdout + result.stderr)}")
        return result

    def measure(self, argv: list[str], env: dict[str, str], what: str, cwd: Path | None = None, timeout: float | None = None) -> Sample | None:
        """
        Runs argv under /usr/bin/time; returns None (and records the failure) when it exits non-zero. After timeout
        seconds the command (its process group) is stopped and None returned, recorded in timed_out, not as a failure.
        """
        self._count += 1
        timing = self.work / f"time-{self._count}.txt"
        output = self.work / "last-command-output.txt"
        mark = self.requests.mark() if self.requests else None
        server_before = self.server_cpu.seconds() if self.server_cpu else None
        proxy_before = self.proxy_cpu.seconds() if self.proxy_cpu else None
        started = time.perf_counter_ns()
        with open(output, "w") as out:
            process = subprocess.Popen(["/usr/bin/time", "-f", "%e %M %U %S", "-o", str(timing), *argv], env=env, stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True)
            try:
                code = process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                timing.unlink(missing_ok=True)
                self.timed_out.append(f"{what}: stopped after {timeout:.0f} s")
                log(f"{what}: stopped after {timeout:.0f} s (not measured)")
                return None
        wall = (time.perf_counter_ns() - started) / 1e9
        fields = timing.read_text().split()
        timing.unlink()
        if code != 0:
            message = f"{what}: exit {code}\n{tail(output.read_text(errors='replace'))}"
            log(message)
            self.failures.append(message)
            return None
        requests = self.requests.since(mark) if self.requests else None  # waits for radosgw's log: after it the server is idle
        server = self.server_cpu.seconds() - server_before if self.server_cpu else None
        proxy = self.proxy_cpu.seconds() - proxy_before if self.proxy_cpu else None
        return Sample(wall, int(fields[-3]), float(fields[-2]) + float(fields[-1]), requests, server, proxy)


def tail(text: str, lines: int = 8) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


def base_environment() -> dict[str, str]:
    """The caller's environment without any S3/AWS settings: each tool gets only its own."""
    return {k: v for k, v in os.environ.items() if not (k.startswith(("S3_", "AWS_")) or k == "METRICS_FILE")}


# ---------------------------------------------------------------------------------------------------------------
# requests sent, and network latency


class RequestLog:
    """
    Counts the HTTP requests the S3 server handled, from radosgw's own log: beast writes one access line per
    request (`beast: 0x...: 127.0.0.1 - user [date] "GET /bucket?list-type=2 HTTP/1.1" 200 ...`). The tools run
    one at a time, so the lines written while one ran are its requests (the corpus uploads happen in between).
    """

    LINE = re.compile(rb' beast: 0x[0-9a-f]+: \S+ - .*?"(?:GET|HEAD|PUT|POST|DELETE) ')

    def __init__(self, path: Path):
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def since(self, mark: int, settle: float = 0.15, limit: float = 3.0) -> int:
        """Requests logged after mark; waits until the count stops growing (radosgw writes its log asynchronously), at most limit seconds."""
        count, waited = self.count(mark), 0.0
        while waited < limit:
            time.sleep(settle)
            waited += settle
            again = self.count(mark)
            if again == count:
                return count
            count = again
        return count

    def count(self, mark: int) -> int:
        if not self.path.exists():
            return 0
        with open(self.path, "rb") as f:
            f.seek(mark)
            return sum(1 for line in f if self.LINE.search(line))


def parse_rtt(text: str) -> float:
    """'20ms', '0.02s' or '20' (milliseconds) -> seconds; 0 < RTT <= 1 s."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"'{text}' is not a round-trip time: use e.g. 20ms, 0.05s or 20 (milliseconds)")
    seconds = float(m.group(1)) / (1 if m.group(2) == "s" else 1000)
    if not 0 < seconds <= 1:
        raise argparse.ArgumentTypeError(f"'{text}': the round-trip time must be more than 0 and at most 1 s")
    return seconds


def format_rtt(seconds: float) -> str:
    return f"{seconds * 1000:g}ms"


class CpuMeter:
    """
    User + system CPU seconds of a set of processes or threads, read from /proc (`utime` and `stime` of
    /proc/PID/stat, or of /proc/self/task/TID/stat for a thread of this process): the S3 server's daemons
    (scripts/s3-server-start.sh records their pids in STATE_DIR/pids) and the delay proxy's thread. The work a
    tool makes the server do runs on the same cores as the tool, so it bounds the tool's wall time from below.
    """

    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, stat_paths: list[Path]):
        if not stat_paths:
            raise BenchError("nothing to measure the CPU of")
        self.paths = stat_paths

    @classmethod
    def of_server(cls, state: Path) -> "CpuMeter":
        pids = [line.split()[1] for line in (state / "pids").read_text().splitlines() if len(line.split()) == 2]
        return cls([Path(f"/proc/{pid}/stat") for pid in pids])

    @classmethod
    def of_thread(cls, native_id: int) -> "CpuMeter":
        return cls([Path(f"/proc/self/task/{native_id}/stat")])

    def seconds(self) -> float:
        total = 0
        for path in self.paths:
            try:
                # The fields after the command name, which is in parentheses and may hold spaces: utime and stime
                # are fields 14 and 15 of the line, 12 and 13 after ") ".
                fields = path.read_text().rsplit(") ", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue  # a daemon that ended (radosgw stopped by a test) counts no more
            total += int(fields[11]) + int(fields[12])
        return total / self.TICKS


class DelayProxy:
    """
    A user-space stand-in for a network with round-trip time RTT (this kernel has no netem): listens on
    127.0.0.1, connects every accepted connection to the upstream (the S3 server) and forwards every chunk in
    each direction RTT/2 after it arrived, in order; a new connection first waits one RTT (the TCP handshake of
    a real network). Bounded: at most QUEUE chunks of at most CHUNK bytes wait per direction and connection (then
    the proxy stops reading that side, so the sender's TCP window fills as on a slow link), at most CONNECTIONS
    connections at once. It runs in a daemon thread of the bench's own process and ends with stop() or with the
    process: nothing to clean up outside it.
    """

    CHUNK = 64 * 1024
    QUEUE = 64
    CONNECTIONS = 512

    def __init__(self, upstream_host: str, upstream_port: int, rtt: float):
        self.upstream = (upstream_host, upstream_port)
        self.rtt = rtt
        self.port = 0
        self.connections = 0
        self.native_id = 0  # the thread's id, for CpuMeter.of_thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "DelayProxy":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            self.native_id = threading.get_native_id()
            try:
                # The wire, not a tool: its delays are timers, so it must wake on time on a busy machine (only
                # this thread, which sleeps most of the time; needs root, else it runs at the normal priority).
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -10)
            except OSError:
                pass
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._slots = asyncio.Semaphore(self.CONNECTIONS)
                server = loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", 0))
                self.port = server.sockets[0].getsockname()[1]
            except BaseException as e:  # reported to start()'s caller
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                server.close()
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name="delay-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            raise BenchError(f"the delay proxy did not start: {failure[0] if failure else 'timeout'}")

    def stop(self) -> None:
        if self._loop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        async with self._slots:
            self.connections += 1
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                client_writer.close()
                return
            writers = (client_writer, upstream_writer)
            try:
                await asyncio.sleep(self.rtt)
                await asyncio.gather(self._pipe(client_reader, upstream_writer, writers), self._pipe(upstream_reader, client_writer, writers))
            except asyncio.CancelledError:
                pass  # stop(): the connection ends with the proxy
            finally:
                for writer in writers:
                    writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, writers: tuple) -> None:
        loop = asyncio.get_running_loop()
        delay = self.rtt / 2
        queue: asyncio.Queue = asyncio.Queue(self.QUEUE)

        async def forward() -> None:
            broken = False
            while (item := await queue.get()) is not None:
                if broken:
                    continue  # keep taking chunks so that the reader never blocks on a full queue
                due, data = item
                try:
                    if (wait := due - loop.time()) > 0:
                        await asyncio.sleep(wait)
                    writer.write(data)
                    await writer.drain()
                except (ConnectionError, OSError):
                    broken = True
                    for w in writers:
                        w.close()
            if not broken:
                try:
                    if writer.can_write_eof():
                        writer.write_eof()
                except (ConnectionError, OSError):
                    pass

        forwarding = asyncio.create_task(forward())
        try:
            while data := await reader.read(self.CHUNK):
                await queue.put((loop.time() + delay, data))
        except (ConnectionError, OSError):
            pass
        finally:
            await queue.put(None)
            await forwarding


def measure_proxy_rtt(rtt: float, pings: int = 10) -> float:
    """
    The proxy's own check: a ping-pong of one byte through a DelayProxy to a local echo server, `pings` times on one
    connection; returns the median round trip in seconds (which should be RTT plus a fraction of a millisecond).
    """
    import socket

    echo = socket.socket()
    echo.bind(("127.0.0.1", 0))
    echo.listen(1)

    def serve() -> None:
        conn, _ = echo.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        with DelayProxy("127.0.0.1", echo.getsockname()[1], rtt) as proxy, socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rounds = []
            for i in range(pings):
                started = time.perf_counter()
                s.sendall(bytes([i]))
                if s.recv(1) != bytes([i]):
                    raise BenchError("the delay proxy's ping-pong came back wrong")
                rounds.append(time.perf_counter() - started)
            return statistics.median(rounds)
    finally:
        echo.close()


def check_proxy(rtt: float) -> float:
    """measure_proxy_rtt, and a BenchError when the round trip is below RTT or above 1.5 × RTT + 5 ms: the run would not measure what it says."""
    measured = measure_proxy_rtt(rtt)
    if not rtt <= measured <= rtt * 1.5 + 0.005:
        raise BenchError(f"the delay proxy's ping-pong took {measured * 1000:.1f} ms, not the {rtt * 1000:g} ms set: the machine is too busy to emulate that latency")
    return measured


# ---------------------------------------------------------------------------------------------------------------
# the tools under test


class S3:
    """The local S3 server and the configuration of every client for it (credentials in 0600 files or env, never argv)."""

    def __init__(self, env_file: Path, conf: Path, tools_endpoint: str | None = None):
        settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        self.direct_endpoint = settings["S3_ENDPOINT"]  # the bench's own uploads and changes (aws, backup push) go here
        self.endpoint = tools_endpoint or self.direct_endpoint  # the measured tools go here: the delay proxy with --rtt
        self.access_key = settings["S3_ACCESS_KEY"]
        self.secret_key = settings["S3_SECRET_KEY"]
        self.host = self.endpoint.split("://", 1)[1]
        conf.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.s3cfg = conf / "s3cfg"
        self.rclone_conf = conf / "rclone.conf"
        write_private(self.s3cfg, f"""[default]
access_key = {self.access_key}
secret_key = {self.secret_key}
host_base = {self.host}
host_bucket = {self.host}
use_https = False
signature_v2 = False
bucket_location = us-east-1
""")
        write_private(self.rclone_conf, f"""[bench]
type = s3
provider = Ceph
access_key_id = {self.access_key}
secret_access_key = {self.secret_key}
endpoint = {self.endpoint}
region = us-east-1
""")
        base = base_environment()
        self.ours_env = base | {"S3_ENDPOINT": self.endpoint, "S3_ACCESS_KEY": self.access_key,
                                "S3_SECRET_KEY": self.secret_key, "S3_REGION": "us-east-1"}
        self.direct_env = self.ours_env | {"S3_ENDPOINT": self.direct_endpoint}
        self.aws_env = base | {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                               "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
        self.plain_env = base  # s3cmd and rclone read their config files; rclone 1.60 fails when AWS_CA_BUNDLE is set

    def aws(self, runner: Runner, *args: str) -> subprocess.CompletedProcess:
        return runner.run(["/usr/bin/aws", "--endpoint-url", self.direct_endpoint, *args], self.aws_env, "aws " + " ".join(args[:2]))


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


@dataclass
class Tool:
    name: str  # column heading
    ours: bool
    pull: callable = None  # (bucket, dest, state) -> argv
    push: callable = None  # (src, bucket, prefix, state) -> argv
    env: dict[str, str] = None


def pull_tools(s3: S3, aws: bool = False) -> list[Tool]:
    """The pull tools; with aws, also `aws s3 sync --delete` (the scale curve), when /usr/bin/aws is there."""
    rclone = ["rclone", "--config", str(s3.rclone_conf)]
    extra = [Tool("aws", False, pull=lambda b, d, s: ["/usr/bin/aws", "--endpoint-url", s3.endpoint, "s3", "sync", "--delete", "--only-show-errors", f"s3://{b}/", str(d)],
                  env=s3.aws_env)] if aws and Path("/usr/bin/aws").exists() else []
    return [
        Tool("content-pull", True, pull=lambda b, d, s: [str(BIN / "content-pull"), "--delete", "--state-dir", str(s), f"s3://{b}/", str(d)], env=s3.ours_env),
        Tool("s3cmd", False, pull=lambda b, d, s: ["s3cmd", "-c", str(s3.s3cfg), "--no-progress", "sync", "--delete-removed", f"s3://{b}/", f"{d}/"], env=s3.plain_env),
        Tool("rclone", False, pull=lambda b, d, s: [*rclone, "sync", f"bench:{b}", str(d)], env=s3.plain_env),
        Tool("rclone-16", False, pull=lambda b, d, s: [*rclone, "sync", "--transfers", "16", "--checkers", "16", f"bench:{b}", str(d)], env=s3.plain_env),
    ] + extra


def push_tools(s3: S3) -> list[Tool]:
    rclone = ["rclone", "--config", str(s3.rclone_conf)]
    return [
        Tool("backup", True, push=lambda src, b, p, s: [str(BIN / "backup"), "push", "--delete", "--state-dir", str(s), str(src), f"s3://{b}/{p}"], env=s3.ours_env),
        Tool("s3cmd", False, push=lambda src, b, p, s: ["s3cmd", "-c", str(s3.s3cfg), "--no-progress", "sync", "--delete-removed", f"{src}/", f"s3://{b}/{p}"], env=s3.plain_env),
        Tool("rclone", False, push=lambda src, b, p, s: [*rclone, "sync", str(src), f"bench:{b}/{p}"], env=s3.plain_env),
        Tool("rclone-16", False, push=lambda src, b, p, s: [*rclone, "sync", "--transfers", "16", "--checkers", "16", str(src), f"bench:{b}/{p}"], env=s3.plain_env),
    ]


def backup_available(env: dict[str, str]) -> bool:
    """False for a backup binary without a push command (the skeleton before issue 4): push then measures s3cmd and rclone only."""
    if not (BIN / "backup").exists():
        return False
    result = subprocess.run([str(BIN / "backup"), "--help"], env=env, capture_output=True, text=True)
    return result.returncode == 0 and re.search(r"^\s+push\b", result.stdout, re.MULTILINE) is not None


def rotated(items: list, by: int) -> list:
    by %= len(items)
    return items[by:] + items[:by]


# ---------------------------------------------------------------------------------------------------------------
# the scenarios


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, s3: S3):
        self.args = args
        self.work = work
        self.s3 = s3
        self.runner = Runner(work)
        self.results: dict[tuple[str, str, str], list[Sample]] = {}  # (group, scenario, tool) -> samples
        self.checks: list[tuple[str, str, str, str | None]] = []  # (group, scenario, tool, difference or None)
        self.notes: list[str] = []
        self.startup: dict[str, dict] = {}
        self.sizes: dict[str, int] = {}
        self.cron: dict[str, str] | None = None
        self.cron_note = ""
        self.scale_corpus: dict[int, tuple[int, int, int]] = {}  # files -> (files, bytes, directories)
        self.scale_upload: dict[int, float] = {}  # files -> seconds the corpus upload took

    def record(self, group: str, scenario: str, tool: str, sample: Sample | None) -> None:
        if sample is not None:
            self.results.setdefault((group, scenario, tool), []).append(sample)

    def check(self, group: str, scenario: str, tool: str, difference: str | None) -> None:
        self.checks.append((group, scenario, tool, difference))
        if difference:
            log(f"{group} {scenario} {tool}: NOT identical to the corpus: {difference}")

    # -- corpus and mutations ---------------------------------------------------------------------------------

    def upload_corpus(self) -> None:
        a = self.args
        log(f"generating {a.files} files in {a.dirs} directories")
        self.corpus = generate_corpus(self.work / "corpus", a.files, a.dirs, a.seed)
        self.deleted = self.work / "deleted"  # originals of the objects deleted in a repetition, restored before the next
        self.deleted.mkdir()
        log(f"corpus: {len(self.corpus.files)} files, {self.corpus.total_bytes / 1e6:.1f} MB; uploading it with aws s3 sync")
        self.source_bucket = "bench-site"
        self.s3.aws(self.runner, "s3", "mb", f"s3://{self.source_bucket}")
        # A third tool uploads the site, so that neither s3cmd's nor rclone's own metadata is on the objects.
        self.s3.aws(self.runner, "s3", "sync", "--only-show-errors", str(self.corpus.directory), f"s3://{self.source_bucket}/")

    def upload(self, relatives: list[str], source: Path) -> None:
        staging = self.work / "staging"
        shutil.rmtree(staging, ignore_errors=True)
        for relative in relatives:
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, staging / relative)
        self.s3.aws(self.runner, "s3", "cp", "--recursive", "--only-show-errors", str(staging), f"s3://{self.source_bucket}/")
        shutil.rmtree(staging)

    def change_one_percent(self, rep: int) -> None:
        rng = random.Random(self.args.seed * 1000 + rep)
        chosen = rng.sample(sorted(self.corpus.files), max(1, len(self.corpus.files) // 100))
        for relative in chosen:
            self.corpus.add(relative, rng.randbytes(random_size(rng)))
        self.upload(chosen, self.corpus.directory)

    def delete_one_percent(self, rep: int) -> None:
        rng = random.Random(self.args.seed * 2000 + rep)
        chosen = rng.sample(sorted(self.corpus.files), max(1, len(self.corpus.files) // 100))
        for relative in chosen:
            (self.deleted / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(self.corpus.directory / relative, self.deleted / relative)
            del self.corpus.files[relative]
        for batch in range(0, len(chosen), 1000):
            keys = {"Objects": [{"Key": k} for k in chosen[batch:batch + 1000]], "Quiet": True}
            self.s3.aws(self.runner, "s3api", "delete-objects", "--bucket", self.source_bucket, "--delete", json.dumps(keys))
        self.deleted_now = chosen

    def restore_deleted(self) -> None:
        restored = getattr(self, "deleted_now", [])
        if not restored:
            return
        self.upload(restored, self.deleted)
        for relative in restored:
            self.corpus.add(relative, (self.deleted / relative).read_bytes())
            (self.deleted / relative).unlink()
        self.deleted_now = []

    def expected_tree(self) -> dict[str, str]:
        return self.corpus.digests()

    # -- pull ---------------------------------------------------------------------------------------------------

    def run_pull(self) -> None:
        tools = pull_tools(self.s3)
        for rep in range(self.args.reps):
            log(f"pull, repetition {rep + 1}/{self.args.reps}")
            self.restore_deleted()
            order = rotated(tools, rep)
            for scenario in ("initial", "no-change", "1% changed", "1% deleted"):
                if scenario == "1% changed":
                    self.change_one_percent(rep)
                elif scenario == "1% deleted":
                    self.delete_one_percent(rep)
                expected = self.expected_tree()
                for tool in order:
                    dest = self.work / "pull" / tool.name / "www"
                    state = self.work / "pull" / tool.name / "state"
                    if scenario == "initial":
                        shutil.rmtree(dest.parent, ignore_errors=True)
                        dest.mkdir(parents=True)
                    sample = self.runner.measure(tool.pull(self.source_bucket, dest, state), tool.env, f"pull {scenario} {tool.name}")
                    self.record("pull", scenario, tool.name, sample)
                    if sample:
                        log(f"  {scenario:<11} {tool.name:<13} {sample.wall:8.3f} s {sample.rss_kb / 1024:7.1f} MiB")
                    self.check("pull", scenario, tool.name, compare(expected, tree_digest(dest)))

    # -- scale --------------------------------------------------------------------------------------------------

    def run_scale(self) -> None:
        """
        The curve: for every size, a corpus of small files in size/100 directories, uploaded once by `backup push`
        (ours, 32 in parallel, straight to the server), then the initial pull of every tool in turn; above
        --all-tools-up-to files only the --large-tools run. Then --rounds rounds of no-change runs with the sizes
        (and tools) interleaved, so that a machine that slows down during the run shifts every size alike instead of
        bending the curve; then 1 % changed per size. Trees are checked after every run as in pull.
        """
        a = self.args
        tools = pull_tools(self.s3, aws=True)
        sizes = []  # (files, base, corpus, bucket, push command, tools)
        for files in a.sizes:
            chosen = tools if files <= a.all_tools_up_to else [t for t in tools if t.name in a.large_tools]
            skipped = [t.name for t in tools if t not in chosen]
            if skipped:
                self.notes.append(f"{files:,} files: {', '.join(skipped)} not measured (only {', '.join(t.name for t in chosen)} above {a.all_tools_up_to:,} files, to keep the run short)")
            base = self.work / f"scale-{files}"
            log(f"scale {files}: generating {files} files in {max(10, files // 100)} directories")
            corpus = generate_corpus(base / "corpus", files, max(10, files // 100), a.seed, small_size)
            self.scale_corpus[files] = (len(corpus.files), corpus.total_bytes, max(10, files // 100))
            bucket = f"bench-scale-{files}"
            self.s3.aws(self.runner, "s3", "mb", f"s3://{bucket}")
            push = [str(BIN / "backup"), "push", "--parallel", "32", "--state-dir", str(base / "push-state"), str(corpus.directory), f"s3://{bucket}/"]
            started = time.perf_counter()
            self.runner.run(push, self.s3.direct_env, f"uploading the {files}-file corpus")
            self.scale_upload[files] = time.perf_counter() - started
            log(f"scale {files}: corpus {corpus.total_bytes / 1e6:.1f} MB uploaded in {self.scale_upload[files]:.1f} s")
            sizes.append((files, base, corpus, bucket, push, chosen))
            for tool in chosen:
                (base / "pull" / tool.name / "www").mkdir(parents=True)
                self.scale_run(files, base, corpus, bucket, tool, "initial")
        os.sync()  # the initial pulls' written trees: their writeback would otherwise run during the no-change rounds
        for round in range(a.rounds):
            log(f"scale: no-change round {round + 1}/{a.rounds}")
            for files, base, corpus, bucket, _, chosen in rotated(sizes, round):
                for tool in rotated(chosen, round):
                    self.scale_run(files, base, corpus, bucket, tool, "no-change")
        for files, base, corpus, bucket, push, chosen in sizes:
            rng = random.Random(a.seed * 1000 + files)
            for relative in rng.sample(sorted(corpus.files), max(1, files // 100)):
                corpus.add(relative, rng.randbytes(small_size(rng)))
            self.runner.run(push, self.s3.direct_env, f"uploading 1 % of the {files}-file corpus")
            for tool in chosen:
                self.scale_run(files, base, corpus, bucket, tool, "1% changed")
        for _, base, *_ in sizes:
            shutil.rmtree(base, ignore_errors=True)  # the corpus and the trees: 100,000 files a tool

    def scale_run(self, files: int, base: Path, corpus: Corpus, bucket: str, tool: Tool, scenario: str) -> None:
        """One measured pull of the scale curve, recorded and its tree checked; skipped when the tool's initial pull was not measured."""
        group = f"scale {files}"
        if scenario != "initial" and (group, "initial", tool.name) not in self.results:
            return  # its initial pull failed or was stopped: nothing to compare
        dest = base / "pull" / tool.name / "www"
        state = base / "pull" / tool.name / "state"
        sample = self.runner.measure(tool.pull(bucket, dest, state), tool.env, f"{group} {scenario} {tool.name}", timeout=self.args.tool_timeout)
        self.record(group, scenario, tool.name, sample)
        if sample:
            log(f"  {files:>7} {scenario:<11} {tool.name:<13} {sample.wall:8.3f} s {sample.cpu:7.2f} CPU s {sample.rss_kb / 1024:7.1f} MiB {sample.requests} requests")
            self.check(group, scenario, tool.name, compare(corpus.digests(), tree_digest(dest)))

    # -- push ---------------------------------------------------------------------------------------------------

    def run_push(self) -> None:
        self.restore_deleted()
        tools = push_tools(self.s3)
        if not backup_available(self.s3.ours_env):
            self.notes.append("backup push: not available yet (tools/backup is still a skeleton on this branch); s3cmd and rclone were measured alone")
            log("backup push is not available yet: measuring s3cmd and rclone only")
            tools = [t for t in tools if not t.ours]
        buckets = {}
        for tool in tools:
            buckets[tool.name] = f"bench-push-{tool.name}"
            self.s3.aws(self.runner, "s3", "mb", f"s3://{buckets[tool.name]}")
        for rep in range(self.args.reps):
            log(f"push, repetition {rep + 1}/{self.args.reps}")
            order = rotated(tools, rep)
            for scenario in ("initial", "no-change"):
                for tool in order:
                    prefix = f"rep-{rep}/"
                    state = self.work / "push" / tool.name / f"state-{rep}"
                    sample = self.runner.measure(tool.push(self.corpus.directory, buckets[tool.name], prefix, state), tool.env,
                                                 f"push {scenario} {tool.name}")
                    self.record("push", scenario, tool.name, sample)
                    if sample:
                        log(f"  {scenario:<11} {tool.name:<13} {sample.wall:8.3f} s {sample.rss_kb / 1024:7.1f} MiB")
                    self.check("push", scenario, tool.name, self.compare_bucket(buckets[tool.name], prefix))

    def compare_bucket(self, bucket: str, prefix: str) -> str | None:
        """Compares the objects under prefix with the corpus: same keys, and each ETag the MD5 of the file."""
        listed = self.s3.aws(self.runner, "s3api", "list-objects-v2", "--bucket", bucket, "--prefix", prefix, "--output", "json")
        contents = json.loads(listed.stdout or "{}").get("Contents", [])
        actual = {o["Key"][len(prefix):]: o["ETag"].strip('"') for o in contents}
        expected = {k: md5 for k, (_, md5, _) in self.corpus.files.items()}
        return compare(expected, actual)

    # -- start-up, sizes, cron ----------------------------------------------------------------------------------

    def run_startup(self) -> None:
        commands = {name: [str(BIN / name), "--version"] for name in ("content-pull", "acme-restore", "backup", "cron")}
        commands["s3cmd"] = ["s3cmd", "--version"]
        commands["rclone"] = ["rclone", "--version"]
        runs = self.args.startup_runs
        log(f"start-up: {runs} runs of --version each (hyperfine)")
        export = self.work / "hyperfine.json"
        argv = ["hyperfine", "--shell=none", "--style", "none", "--warmup", "3", "--runs", str(runs), "--export-json", str(export)]
        for name, command in commands.items():
            argv += ["--command-name", name, " ".join(command)]
        self.runner.run(argv, self.s3.plain_env, "hyperfine")
        for result in json.loads(export.read_text())["results"]:
            self.startup[result["command"]] = {"median_ms": result["median"] * 1000}
        for name, command in commands.items():
            samples = [self.runner.measure(command, self.s3.plain_env, f"{name} --version") for _ in range(5)]
            rss = [s.rss_kb for s in samples if s]
            if rss:
                self.startup[name]["rss_mb"] = statistics.median(rss) / 1024
            if (BIN / name).exists():
                self.sizes[name] = (BIN / name).stat().st_size

    def run_cron(self) -> None:
        script = ROOT / "bench" / "cron.sh"
        if not script.exists():
            self.cron_note = "cron not available yet: bench/cron.sh (from the cron issue) is not on this branch"
            log(self.cron_note)
            return
        log("cron: bench/cron.sh")
        # bench/cron.sh measures artifacts/bin/cron; its knobs are environment variables (defaults: 50 start-up
        # runs, 10 s idle, 10 every-second jobs for 60 s, the last of 200 and 1,000 every-second jobs for 30 s
        # each). The quick mode only checks that it runs.
        env = base_environment()
        if self.args.quick:
            env |= {"STARTUP_RUNS": "5", "IDLE_SECONDS": "2", "LATENESS_JOBS": "2", "LATENESS_SECONDS": "3",
                    "LAST_JOB_COUNTS": "5", "LAST_JOB_SECONDS": "4", "FLOOR_ROUNDS": "2"}
        result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            message = f"bench/cron.sh: exit {result.returncode}\n{tail(result.stdout + result.stderr)}"
            log(message)
            self.runner.failures.append(message)
            return
        self.cron = dict(line.split("=", 1) for line in result.stdout.splitlines() if re.match(r"^[A-Za-z0-9_.-]+=", line))


# ---------------------------------------------------------------------------------------------------------------
# report


def median(samples: list[Sample] | None, attribute: str) -> float | None:
    values = [getattr(s, attribute) for s in samples or [] if getattr(s, attribute) is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def met_text(met: bool | str | None, console: bool = False, none: str = "n/a") -> str:
    """A target's verdict: yes / no, `none` when not measured, or the text of a row that judges no target itself."""
    if isinstance(met, str):
        return met.replace("**", "") if console else met
    if met is None:
        return none
    return ("met" if met else "MISSED") if console else ("yes" if met else "**no**")


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return None if ours is None or not theirs else ours / theirs


class Report:
    def __init__(self, bench: Bench, args: argparse.Namespace, started: datetime.datetime, machine: dict[str, str],
                 versions: dict[str, str], server: str):
        self.b, self.args, self.started, self.machine, self.versions, self.server = bench, args, started, machine, versions, server
        self.targets: list[tuple[str, str, bool | str | None]] = []

    def wall(self, group: str, scenario: str, tool: str) -> float | None:
        return median(self.b.results.get((group, scenario, tool)), "wall")

    def rss(self, group: str, scenario: str, tool: str) -> float | None:
        value = median(self.b.results.get((group, scenario, tool)), "rss_kb")
        return None if value is None else value / 1024

    def cpu(self, group: str, scenario: str, tool: str) -> float | None:
        return median(self.b.results.get((group, scenario, tool)), "cpu")

    def group_table(self, group: str, scenarios: list[str], ours: str, others: list[str]) -> list[str]:
        lines = [f"| {group}: wall s | " + " | ".join([ours, *others]) + " | " + " | ".join(f"{ours} ÷ {t}" for t in others) + " |",
                 "|---|" + "---:|" * (1 + 2 * len(others))]
        for measure, label in ((self.wall, ""), (self.cpu, "CPU s, ")):
            for scenario in scenarios:
                values = [measure(group, scenario, t) for t in [ours, *others]]
                ratios = [ratio(values[0], v) for v in values[1:]]
                lines.append(f"| {label}{scenario} | " + " | ".join(fmt(v, 3) for v in values) + " | " + " | ".join(fmt(r) for r in ratios) + " |")
        # Rows only where something was counted: requests and the server's CPU with a server log and pids, the proxy's with --rtt.
        for attribute, label, digits in (("requests", "S3 requests", 0), ("server_cpu", "S3 server CPU s", 2), ("proxy_cpu", "delay proxy CPU s", 2)):
            for scenario in scenarios:
                values = [median(self.b.results.get((group, scenario, t)), attribute) for t in [ours, *others]]
                if any(v is not None for v in values):
                    lines.append(f"| {label}, {scenario} | " + " | ".join(fmt(v, digits) for v in values) + " | "
                                 + " | ".join(fmt(ratio(values[0], v)) for v in values[1:]) + " |")
        rss = [self.rss(group, "initial", t) for t in [ours, *others]]
        lines.append("| peak RSS, initial (MiB) | " + " | ".join(fmt(r, 1) for r in rss) + " | "
                     + " | ".join(fmt(ratio(rss[0], r)) for r in rss[1:]) + " |")
        return lines

    def target(self, label: str, value: float | None, limit: float, unit: str = "×") -> None:
        if value is None:
            self.targets.append((label, "not measured", None))
        else:
            shown = f"{value:.2f}{unit}" if unit == "×" else f"{value:.1f} {unit}"
            self.targets.append((label, shown, value <= limit))

    def evaluate_targets(self) -> None:
        w = lambda scenario, tool: self.wall("pull", scenario, tool)
        r = lambda a, b: ratio(a, b)
        if self.args.rtt:
            rtt = format_rtt(self.args.rtt)
            self.target(f"pull initial ≤ 0.25× rclone --transfers 16 at {rtt} RTT", r(w("initial", "content-pull"), w("initial", "rclone-16")), 0.25)
            self.floor("initial", "content-pull", "rclone-16", 0.25)
            self.target(f"no-change ≤ 0.05× rclone-16 at {rtt} RTT", r(w("no-change", "content-pull"), w("no-change", "rclone-16")), 0.05)
            self.target(f"no-change ≤ 0.2× s3cmd at {rtt} RTT", r(w("no-change", "content-pull"), w("no-change", "s3cmd")), 0.2)
        self.target("pull initial ≤ 0.9× rclone --transfers 16", r(w("initial", "content-pull"), w("initial", "rclone-16")), 0.9)
        self.target("pull initial ≤ 0.1× s3cmd", r(w("initial", "content-pull"), w("initial", "s3cmd")), 0.1)
        self.target("no-change ≤ 0.2× s3cmd", r(w("no-change", "content-pull"), w("no-change", "s3cmd")), 0.2)
        self.target("no-change ≤ 0.1× rclone", r(w("no-change", "content-pull"), w("no-change", "rclone")), 0.1)
        self.target("1 % change ≤ 0.25× s3cmd", r(w("1% changed", "content-pull"), w("1% changed", "s3cmd")), 0.25)
        self.target("peak RSS, initial pull ≤ 0.5× rclone", r(self.rss("pull", "initial", "content-pull"), self.rss("pull", "initial", "rclone")), 0.5)
        if "startup" in self.args.only:
            for name in ("content-pull", "acme-restore", "backup", "cron"):
                self.target(f"{name} start-up ≤ 10 ms", self.b.startup.get(name, {}).get("median_ms"), 10, "ms")
            for name in ("content-pull", "acme-restore", "backup", "cron"):
                size = self.b.sizes.get(name)
                self.target(f"{name} binary ≤ 12 MB", None if size is None else size / 1e6, 12, "MB")
        if "cron" not in self.args.only:
            return
        cron = self.b.cron or {}
        idle_kb = number(cron.get("cron_idle_rss_kb_20_jobs"))
        self.target("cron idle RSS, 20 jobs ≤ 15 MB", None if idle_kb is None else idle_kb / 1024, 15, "MiB")
        self.target("cron start lateness p99 ≤ 20 ms", number(cron.get("cron_lateness_ms_p99")), 20, "ms")

    def cores(self) -> int:
        """The cores the server, the proxy and the tools shared: what the floor rows spread their CPU seconds over."""
        return int(self.machine.get("cores") or os.cpu_count() or 1)

    def floor(self, scenario: str, ours: str, theirs: str, limit: float) -> None:
        """
        The least wall time this machine allows for our run, as a ratio to theirs: the CPU seconds the S3 server
        and the delay proxy spent on our run, spread over every core, is time no tool on these cores can go
        under (even one that costs nothing). Above the target's limit, the target cannot be met on this machine.
        """
        samples = self.b.results.get(("pull", scenario, ours))
        server, proxy = median(samples, "server_cpu"), median(samples, "proxy_cpu")
        cores = self.cores()
        theirs_wall = self.wall("pull", scenario, theirs)
        label = (f"the least this machine allows for the target above: (S3 server + delay proxy CPU s of our {scenario} pull) "
                 f"÷ {cores} cores ÷ {theirs}'s wall time")
        if server is None or not theirs_wall:
            self.targets.append((label, "not measured", None))
            return
        least = (server + (proxy or 0.0)) / cores / theirs_wall
        self.targets.append((label, f"{least:.2f}× ({server:.1f} + {proxy or 0.0:.1f} CPU s)",
                             f"under {limit:g}×: reachable here" if least <= limit else f"**over {limit:g}×: not reachable on this machine**"))

    def label(self) -> str:
        """Which generated block of the results file this run rewrites: one per kind of run."""
        return (("quick" if self.args.quick else "full") + ("-server-latency" if self.args.server_latency else "")
                + (f"-rtt-{format_rtt(self.args.rtt)}" if self.args.rtt else ""))

    def identical(self) -> bool:
        return all(d is None for *_, d in self.b.checks)

    def markdown(self) -> str:
        a, b = self.args, self.b
        out = [begin_marker(self.label()), "", f"## Latest {self.label()} run: {self.started:%Y-%m-%d %H:%M} UTC{' (smoke test, not a measurement)' if a.quick else ''}", ""]
        if a.note:
            out += [f"**{a.note}**", ""]
        out += [f"- Command: `bench/run.sh {shlex.join(sys.argv[1:])}`".rstrip() + f" ({a.reps} repetition(s), tools alternated within each scenario, medians shown)",
                f"- Corpus: {len(b.corpus.files)} files in {a.dirs} directories, {b.corpus.total_bytes / 1e6:.1f} MB, sizes 0.5-64 KB (seed {a.seed}); uploaded with `aws s3 sync`",
                f"- S3 server: {self.server}",
                f"- Machine: {self.machine['cpu']}, {self.machine['cores']} cores, {self.machine['memory']} RAM, Linux {self.machine['kernel']}, "
                f"load average {self.machine['load_start']} at the start, {self.machine['load_end']} at the end",
                "- Versions: " + ", ".join(f"{k} {v}" for k, v in self.versions.items()),
                f"- Trees identical to the corpus after every run of every tool: **{'yes' if self.identical() else 'NO'}** ({len(b.checks)} checks)",
                "- Wall time: monotonic clock around `/usr/bin/time`; CPU: user + system seconds (`%U + %S`); peak RSS: `/usr/bin/time -f %M` in MiB. "
                "Ratios below 1 mean we are faster/smaller.",
                ""]
        out += ["### Pull: `content-pull --delete` vs `s3cmd sync --delete-removed` vs `rclone sync` (defaults, and `--transfers 16 --checkers 16`)", ""]
        out += self.group_table("pull", ["initial", "no-change", "1% changed", "1% deleted"], "content-pull", ["s3cmd", "rclone", "rclone-16"])
        out += ["", "### Push: `backup push --delete` (default `--parallel 8`) vs `s3cmd sync --delete-removed` vs `rclone sync`, local → S3", ""]
        if "push" not in a.only:
            out.append("not run (`--only`)")
        elif any(k[0] == "push" and k[2] == "backup" for k in b.results):
            out += self.group_table("push", ["initial", "no-change"], "backup", ["s3cmd", "rclone", "rclone-16"])
        else:
            others = ["s3cmd", "rclone", "rclone-16"]
            out += ["| push | backup s | " + " | ".join(f"{t} s" for t in others) + " |", "|---|---:|" + "---:|" * len(others)]
            for scenario in ("initial", "no-change"):
                out.append(f"| {scenario} | not available yet | " + " | ".join(fmt(self.wall("push", scenario, t), 3) for t in others) + " |")
        out += ["", "### Start-up (`--version`, median of " + str(a.startup_runs) + " runs, hyperfine) and size", ""]
        if "startup" in a.only:
            out += ["| tool | start-up ms | peak RSS MiB | binary MB (10^6 bytes) |", "|---|---:|---:|---:|"]
        else:
            out.append("not run (`--only`)")
        for name, values in b.startup.items():
            size = b.sizes.get(name)
            out.append(f"| {name} | {fmt(values.get('median_ms'), 1)} | {fmt(values.get('rss_mb'), 1)} | {'-' if size is None else f'{size / 1e6:.2f}'} |")
        out += ["", "### cron (bench/cron.sh)", ""]
        if "cron" not in a.only:
            out.append("not run (`--only`)")
        elif b.cron:
            out += ["| measure | value |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in b.cron.items()]
        else:
            out.append(b.cron_note or "bench/cron.sh failed (see the run's output)")
        out += ["", "### Targets (ratios: ours ÷ theirs, same machine, same run)", ""]
        if not self.args.server_latency:
            out += ["The issue's reference numbers (s3cmd initial pull 187 s) come from a server without tcp_nodelay: "
                    "the pull targets are judged in a `--server-latency` run; this table is for comparison.", ""]
        out += ["| target | measured | met |", "|---|---:|---|"]
        for label, shown, met in self.targets:
            out.append(f"| {label} | {shown} | {met_text(met)} |")
        if b.notes or b.runner.failures:
            out += ["", "### Notes", ""] + [f"- {n}" for n in b.notes] + [f"- FAILED: {f.splitlines()[0]}" for f in b.runner.failures]
        out += ["", end_marker(self.label())]
        return "\n".join(out) + "\n"

    def console(self) -> str:
        lines = []
        for group, scenarios, ours in (("pull", ["initial", "no-change", "1% changed", "1% deleted"], "content-pull"), ("push", ["initial", "no-change"], "backup")):
            tools = [ours, "s3cmd", "rclone", "rclone-16"]
            lines.append(f"{group:<18}" + "".join(f"{t:>14}" for t in tools) + "".join(f"{'÷' + t:>12}" for t in tools[1:]))
            for scenario in scenarios:
                walls = [self.wall(group, scenario, t) for t in tools]
                lines.append(f"  {scenario:<16}" + "".join(f"{fmt(w, 3):>14}" for w in walls) + "".join(f"{fmt(ratio(walls[0], w)):>12}" for w in walls[1:]))
            for scenario in scenarios:
                cpus = [self.cpu(group, scenario, t) for t in tools]
                lines.append(f"  CPU {scenario:<12}" + "".join(f"{fmt(c, 3):>14}" for c in cpus) + "".join(f"{fmt(ratio(cpus[0], c)):>12}" for c in cpus[1:]))
            rss = [self.rss(group, "initial", t) for t in tools]
            lines.append(f"  {'RSS MiB, initial':<16}" + "".join(f"{fmt(r, 1):>14}" for r in rss) + "".join(f"{fmt(ratio(rss[0], r)):>12}" for r in rss[1:]))
        lines.append("start-up ms  " + "  ".join(f"{k} {fmt(v.get('median_ms'), 1)}" for k, v in self.b.startup.items()))
        lines.append("binary MB    " + "  ".join(f"{k} {v / 1e6:.2f}" for k, v in self.b.sizes.items()))
        lines.append("cron         " + ("  ".join(f"{k}={v}" for k, v in self.b.cron.items()) if self.b.cron else self.b.cron_note))
        for label, shown, met in self.targets:
            lines.append(f"target       {label}: {shown} ({met_text(met, console=True)})")
        lines.append(f"trees identical: {'yes' if self.identical() else 'NO'} ({len(self.b.checks)} checks)")
        return "\n".join(lines)


def slopes(points: dict[int, float | None]) -> list[tuple[int, int, float | None]]:
    """
    Cost per 1,000 objects between consecutive sizes: (from, to, (cost(to) - cost(from)) / ((to - from) / 1000)).
    The fixed part of a run (start-up, the first request) cancels out; a slope that grows from one pair of sizes
    to the next is a superlinear step. None where either size was not measured.
    """
    sizes = sorted(points)
    result = []
    for low, high in zip(sizes, sizes[1:]):
        a, b = points[low], points[high]
        result.append((low, high, None if a is None or b is None else (b - a) / ((high - low) / 1000)))
    return result


def step(pairs: list[tuple[int, int, float | None]]) -> float | None:
    """The last slope ÷ the one before: ~1 for a linear cost, well above 1 when the cost bends upwards. None if not measured."""
    if len(pairs) < 2 or pairs[-1][2] is None or pairs[-2][2] is None:
        return None
    before, last = pairs[-2][2], pairs[-1][2]
    if before <= 0:
        return None if last <= 0 else float("inf")
    return last / before


FLAT = 1.5  # a no-change slope up to 1.5× the previous one counts as flat: single runs on this machine swing by ±30 %


class ScaleReport(Report):
    """The --scale / --files LIST run: one table of every (scenario, tool, size), the slopes per 1,000 objects, the scale targets."""

    SCENARIOS = ("initial", "no-change", "1% changed")

    def label(self) -> str:
        return "scale" + (f"-rtt-{format_rtt(self.args.rtt)}" if self.args.rtt else "")

    def tools(self) -> list[str]:
        names = []
        for (_, _, tool) in self.b.results:
            if tool not in names:
                names.append(tool)
        order = ["content-pull", "rclone-16", "rclone", "s3cmd", "aws"]
        return sorted(names, key=lambda t: order.index(t) if t in order else len(order))

    def value(self, files: int, scenario: str, tool: str, attribute: str) -> float | None:
        value = median(self.b.results.get((f"scale {files}", scenario, tool)), attribute)
        return None if value is None else (value / 1024 if attribute == "rss_kb" else value)

    def evaluate_targets(self) -> None:
        sizes = self.args.sizes
        largest = max(sizes)
        v = lambda scenario, tool, attribute="wall": self.value(largest, scenario, tool, attribute)
        at = f"at {largest:,} objects"
        loopback = not self.args.rtt
        no_change = v("no-change", "content-pull")
        if loopback:
            self.target(f"no-change {at} ≤ 2 s (loopback)", no_change, 2, "s")
            server, client = v("no-change", "content-pull", "server_cpu"), v("no-change", "content-pull", "cpu")
            cores = self.cores()
            label = f"the least this machine allows for the target above: (S3 server CPU s + ours) ÷ {cores} cores, and with a client that costs nothing"
            if server is None or client is None:
                self.targets.append((label, "not measured", None))
            else:
                least, bare = (server + client) / cores, server / cores
                verdict = ("reachable here" if least <= 2 else
                           "**not reachable with this client's CPU**" if bare <= 2 else "**not reachable by any client on this machine**")
                self.targets.append((label, f"{least:.2f} s and {bare:.2f} s ({server:.2f} + {client:.2f} CPU s)", verdict))
        rss = v("no-change", "content-pull", "rss_kb")
        self.target(f"no-change {at}: peak RSS ≤ 100 MiB", rss, 100, "MiB")
        self.target(f"no-change {at}: peak RSS ≤ 0.5× rclone-16's", ratio(rss, v("no-change", "rclone-16", "rss_kb")), 0.5)
        self.target(f"no-change {at} ≤ 0.05× rclone-16", ratio(no_change, v("no-change", "rclone-16")), 0.05)
        self.target(f"no-change {at} ≤ 0.2× s3cmd", ratio(no_change, v("no-change", "s3cmd")), 0.2)
        self.target(f"initial pull {at} ≤ 0.25× rclone-16 (the issue sets it for 20 ms RTT)", ratio(v("initial", "content-pull"), v("initial", "rclone-16")), 0.25)
        if len(sizes) >= 3:
            for attribute, what in (("wall", "wall"), ("cpu", "CPU")):
                pairs = slopes({n: self.value(n, "no-change", "content-pull", attribute) for n in sizes})
                self.target(f"no-change {what} per 1,000 objects flat: slope {pairs[-1][0]:,}→{pairs[-1][1]:,} ≤ {FLAT}× slope {pairs[-2][0]:,}→{pairs[-2][1]:,}",
                            step(pairs), FLAT)

    def markdown(self) -> str:
        a, b = self.args, self.b
        out = [begin_marker(self.label()), "", f"## Latest {self.label()} run: {self.started:%Y-%m-%d %H:%M} UTC", ""]
        if a.note:
            out += [f"**{a.note}**", ""]
        corpora = "; ".join(f"{n:,} files in {d:,} directories, {size / 1e6:.1f} MB (uploaded in {b.scale_upload.get(k, 0):.0f} s)"
                            for k, (n, size, d) in sorted(b.scale_corpus.items()))
        out += [f"- Command: `bench/run.sh {shlex.join(sys.argv[1:])}`".rstrip() + f" (initial and 1 % changed: 1 run of every (size, tool); no-change: {a.rounds} rounds, sizes and tools interleaved, medians)",
                f"- Corpora: {corpora}; sizes 200 B-16 KB (seed {a.seed}); each uploaded once by `backup push --parallel 32` straight to the server and pulled by every tool",
                f"- S3 server: {self.server}",
                f"- Machine: {self.machine['cpu']}, {self.machine['cores']} cores, {self.machine['memory']} RAM, Linux {self.machine['kernel']}, "
                f"load average {self.machine['load_start']} at the start, {self.machine['load_end']} at the end",
                "- Versions: " + ", ".join(f"{k} {v}" for k, v in self.versions.items()),
                f"- Trees identical to the corpus after every run of every tool: **{'yes' if self.identical() else 'NO'}** ({len(b.checks)} checks)",
                "- Wall time: monotonic clock; CPU: user + system seconds; peak RSS in MiB (`/usr/bin/time`); requests: the HTTP requests "
                "radosgw logged while the tool ran (one `beast:` access line each).",
                ""]
        tools = self.tools()
        out += ["### Scale: every run", "", "| scenario | tool | objects | wall s | CPU s | peak RSS MiB | S3 requests | S3 server CPU s | wall ÷ content-pull's |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for scenario in self.SCENARIOS:
            for tool in tools:
                for n in a.sizes:
                    wall = self.value(n, scenario, tool, "wall")
                    requests = self.value(n, scenario, tool, "requests")
                    out.append(f"| {scenario} | {tool} | {n:,} | {fmt(wall, 3) if wall is not None else 'not measured'} | {fmt(self.value(n, scenario, tool, 'cpu'), 2)} | "
                               f"{fmt(self.value(n, scenario, tool, 'rss_kb'), 1)} | {'n/a' if requests is None else f'{requests:,.0f}'} | "
                               f"{fmt(self.value(n, scenario, tool, 'server_cpu'), 2)} | "
                               f"{fmt(ratio(wall, self.value(n, scenario, 'content-pull', 'wall')))} |")
        pairs = [(low, high) for low, high, _ in slopes({n: 0.0 for n in a.sizes})]
        heads = [f"{low:,}→{high:,}" for low, high in pairs]
        out += ["", "### Cost per 1,000 objects (slope between sizes: the fixed part of a run cancels out)", "",
                "| scenario | tool | " + " | ".join(f"wall s/1k {h}" for h in heads) + " | " + " | ".join(f"CPU s/1k {h}" for h in heads)
                + " | " + " | ".join(f"RSS MiB/1k {h}" for h in heads) + " | " + " | ".join(f"requests/1k {h}" for h in heads) + " |",
                "|---|---|" + "---:|" * (4 * len(heads))]
        for scenario in self.SCENARIOS:
            for tool in tools:
                cells = []
                for attribute, digits in (("wall", 4), ("cpu", 4), ("rss_kb", 2), ("requests", 0)):
                    cells += [fmt(s, digits) for _, _, s in slopes({n: self.value(n, scenario, tool, attribute) for n in a.sizes})]
                out.append(f"| {scenario} | {tool} | " + " | ".join(cells) + " |")
        out += ["", "### Targets (ratios: ours ÷ theirs, same run)", "", "| target | measured | met |", "|---|---:|---|"]
        for label, shown, met in self.targets:
            out.append(f"| {label} | {shown} | {met_text(met, none='not measured')} |")
        out.append(f"| trees byte-identical after every run | {len(b.checks)} checks | {'yes' if self.identical() else '**no**'} |")
        notes = b.notes + [f"not measured: {t}" for t in b.runner.timed_out] + [f"FAILED: {f.splitlines()[0]}" for f in b.runner.failures]
        if notes:
            out += ["", "### Notes", ""] + [f"- {n}" for n in notes]
        out += ["", end_marker(self.label())]
        return "\n".join(out) + "\n"

    def console(self) -> str:
        lines = [f"{'scale':<12}{'tool':<14}" + "".join(f"{n:>12,}" for n in self.args.sizes) + "   (wall s / CPU s / RSS MiB / requests)"]
        for scenario in self.SCENARIOS:
            for tool in self.tools():
                for attribute, digits in (("wall", 3), ("cpu", 2), ("rss_kb", 1), ("requests", 0)):
                    lines.append(f"{scenario if attribute == 'wall' else '':<12}{tool if attribute == 'wall' else '':<14}"
                                 + "".join(f"{fmt(self.value(n, scenario, tool, attribute), digits):>12}" for n in self.args.sizes) + f"   {attribute}")
        for label, shown, met in self.targets:
            lines.append(f"target       {label}: {shown} ({met_text(met, console=True, none='not measured')})")
        lines.append(f"trees identical: {'yes' if self.identical() else 'NO'} ({len(self.b.checks)} checks)")
        return "\n".join(lines)


def number(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def write_results(path: Path, label: str, block: str) -> None:
    """
    Replaces this kind of run's generated block in path, keeping everything else (other kinds of runs and the
    hand-written notes). A new kind of block goes after the last generated block, or at the end.
    """
    begin, end = begin_marker(label), end_marker(label)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# Benchmark results\n\nWritten by `bench/run.sh` (method: bench/README.md).\n\n" + block)
        return
    text = path.read_text()
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        path.write_text(before + block.rstrip("\n") + rest.split(end, 1)[1])
        return
    ends = list(re.finditer(r"<!-- bench/run.sh: generated results end: [^>]* -->\n?", text))
    at = ends[-1].end() if ends else len(text)
    path.write_text(text[:at] + ("\n" if ends else "\n" if not text.endswith("\n") else "") + block + ("\n" if ends else "") + text[at:])


# ---------------------------------------------------------------------------------------------------------------
# machine, versions, server


def first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, env=base_environment()).stdout.strip()
        return out.splitlines()[0] if out else "?"
    except OSError:
        return "?"


def machine_info() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.machine())
    memory_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))
    return {"cpu": cpu, "cores": str(os.cpu_count()), "memory": f"{memory_kb / 1024 / 1024:.0f} GB", "kernel": platform.release(),
            "load_start": load_average()}


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def versions() -> dict[str, str]:
    return {
        "content-pull": first_line([str(BIN / "content-pull"), "--version"]),
        "s3cmd": first_line(["s3cmd", "--version"]).replace("s3cmd version ", ""),
        "rclone": first_line(["rclone", "--version"]).replace("rclone ", ""),
        "radosgw": re.sub(r"^ceph version (\S+).*", r"\1", first_line(["radosgw", "--version"])),
        ".NET SDK": first_line(["dotnet", "--version"]),
        "aws-cli": first_line(["/usr/bin/aws", "--version"]).split(" ")[0].replace("aws-cli/", ""),
    }


# ---------------------------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke test: 200 files in 10 directories, 1 repetition, 5 start-up runs")
    p.add_argument("--files", help="files in the corpus (default 5000); a comma-separated list (e.g. 1000,10000,100000) runs the scale curve")
    p.add_argument("--scale", action="store_true", help="the scale curve: --files 1000,10000,100000 (small files: 200 B-16 KB, ~470 MB at 100,000)")
    p.add_argument("--rtt", type=parse_rtt, help="round-trip time between the tools and the S3 server, e.g. 20ms: every tool connects through a delay proxy on 127.0.0.1")
    p.add_argument("--all-tools-up-to", type=int, default=10000, help="scale curve: every tool runs at sizes up to this (default 10000), above it only --large-tools")
    p.add_argument("--large-tools", default="content-pull,rclone-16", help="scale curve: the tools that run above --all-tools-up-to (default content-pull,rclone-16)")
    p.add_argument("--rounds", type=int, default=3, help="scale curve: no-change runs of every (size, tool), the sizes interleaved round by round; medians shown (default 3)")
    p.add_argument("--tool-timeout", type=float, default=900, help="scale curve: a tool's run is stopped after this many seconds and reported as not measured (default 900)")
    p.add_argument("--dirs", type=int, help="directories in the corpus (default 50)")
    p.add_argument("--reps", type=int, help="repetitions of every scenario (default 3)")
    p.add_argument("--startup-runs", type=int, help="--version runs per tool (default 30)")
    p.add_argument("--seed", type=int, default=7, help="seed of the corpus and of the changes (default 7)")
    p.add_argument("--only", default="pull,push,startup,cron", help="comma-separated parts to run (default pull,push,startup,cron)")
    p.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md", help="results file whose generated block is rewritten (default bench/RESULTS.md)")
    p.add_argument("--note", default="", help="a label printed in bold in the results, e.g. 'machine busy with parallel builds'")
    p.add_argument("--server-latency", action="store_true",
                   help="run the S3 server without tcp_nodelay (radosgw's default): a client that delays its ACKs (s3cmd, rclone) waits ~40 ms per response on a kept-alive connection; the setting of the issue's reference numbers")
    p.add_argument("--no-publish", action="store_true", help="use the binaries in artifacts/bin as they are (CI: scripts/test.sh published them)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (corpus, trees, configs) for inspection")
    args = p.parse_args()
    quick = args.quick
    try:
        sizes = [int(n) for n in args.files.split(",")] if args.files else []
    except ValueError:
        p.error(f"--files: '{args.files}' is not a number or a comma-separated list of numbers")
    if args.scale:
        if sizes:
            p.error("--scale and --files: give one of them (--scale is --files 1000,10000,100000)")
        sizes = [1000, 10000, 100000]
    args.sizes = sorted(set(sizes)) if len(sizes) > 1 else []
    args.scale = bool(args.sizes)
    if args.scale and (quick or args.server_latency):
        p.error("--scale (or a list of sizes) does not combine with --quick or --server-latency")
    if any(n < 1 for n in sizes):
        p.error("--files must be at least 1")
    args.large_tools = set(args.large_tools.split(","))
    args.files = sizes[0] if len(sizes) == 1 else (200 if quick else 5000)
    args.dirs = args.dirs or (10 if quick else 50)
    args.reps = args.reps or (1 if quick else 3)
    args.startup_runs = args.startup_runs or (5 if quick else 30)
    args.only = set(args.only.split(","))
    if unknown := args.only - {"pull", "push", "startup", "cron"}:
        p.error(f"--only: unknown part(s) {', '.join(sorted(unknown))}: use pull, push, startup, cron")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.files < 1 or args.dirs < 1 or args.reps < 1 or args.startup_runs < 2:
        p.error("--files, --dirs and --reps must be at least 1, --startup-runs at least 2")
    return args


def main() -> int:
    args = parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    subprocess.run([str(ROOT / "scripts" / "install-deps.sh"), "bench", "ceph"], check=True)
    if not args.no_publish:
        subprocess.run([str(ROOT / "scripts" / "publish.sh")], check=True, cwd=ROOT, stdout=sys.stderr)
    missing = [t for t in ("content-pull", "acme-restore", "backup", "cron") if not (BIN / t).exists()]
    if missing:
        raise BenchError(f"{', '.join(missing)} missing in {BIN}: run scripts/publish.sh (or drop --no-publish)")

    work = Path(tempfile.mkdtemp(prefix="infratools-bench-", dir="/tmp"))
    server_state = work / "s3-server"
    server_env = os.environ | ({"S3_TEST_TCP_NODELAY": "0"} if args.server_latency else {})
    log(f"work directory {work}; starting the S3 server")
    proxy: DelayProxy | None = None
    try:
        env_file = subprocess.run([str(ROOT / "scripts" / "s3-server-start.sh"), str(server_state)], check=True, env=server_env,
                                  stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]
        machine = machine_info()
        direct = S3(Path(env_file), work / "conf")
        frontend = next(line.split("=", 1)[1].strip() for line in (server_state / "ceph.conf").read_text().splitlines() if line.startswith("rgw frontends"))
        server = (f"Ceph RGW {first_line(['radosgw', '--version']).split()[2]} on 127.0.0.1, memstore OSD, `rgw frontends = {frontend}`"
                  + (" (**high-latency mode**: no tcp_nodelay, ~40 ms per response on a kept-alive connection for a client that delays its ACKs)" if args.server_latency else ""))
        if args.rtt:
            measured = check_proxy(args.rtt)
            log(f"delay proxy: a ping-pong through it takes {measured * 1000:.1f} ms (RTT set: {format_rtt(args.rtt)})")
            host, port = direct.direct_endpoint.split("://", 1)[1].rsplit(":", 1)
            proxy = DelayProxy(host, int(port), args.rtt)
            proxy.start()
            server += (f"; every measured tool reaches it through the delay proxy of bench.py on 127.0.0.1 (**RTT {format_rtt(args.rtt)}**: every chunk held "
                       f"{args.rtt * 500:g} ms each way, one RTT per new connection; a ping-pong through it measured {measured * 1000:.1f} ms before the run)")
        s3 = S3(Path(env_file), work / "conf", proxy.endpoint if proxy else None)
        bench = Bench(args, work, s3)
        bench.runner.requests = RequestLog(server_state / "log" / "client.rgw.log")
        bench.runner.server_cpu = CpuMeter.of_server(server_state)
        if proxy:
            bench.runner.proxy_cpu = CpuMeter.of_thread(proxy.native_id)
        if args.scale:
            bench.run_scale()
            report_kind = ScaleReport
        else:
            bench.upload_corpus()
            if "pull" in args.only:
                bench.run_pull()
            if "push" in args.only:
                bench.run_push()
            if "startup" in args.only:
                bench.run_startup()
            if "cron" in args.only:
                bench.run_cron()
            report_kind = Report
        machine["load_end"] = load_average()
        report = report_kind(bench, args, started, machine, versions(), server)
        report.evaluate_targets()
        print(report.console())
        write_results(args.output, report.label(), report.markdown())
        log(f"results written to {args.output}")
        failed = bool(bench.runner.failures) or not report.identical()
        if failed:
            log(f"FAILED: {len(bench.runner.failures)} command(s) failed, trees identical: {'yes' if report.identical() else 'no'}")
        return 1 if failed else 0
    finally:
        if proxy:
            proxy.stop()
        subprocess.run([str(ROOT / "scripts" / "s3-server-stop.sh"), str(server_state)])
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop_on_sigterm)  # so that the finally blocks stop the S3 server
    try:
        sys.exit(main())
    except BenchError as e:
        log(str(e))
        sys.exit(1)
    except subprocess.CalledProcessError as e:
        log(f"{' '.join(map(str, e.cmd))} failed with exit {e.returncode}")
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
