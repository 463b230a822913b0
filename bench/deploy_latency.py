#!/usr/bin/env python3
"""
Deploy latency (issue 15): the time from `content-pull publish` returning to nginx serving the new release,
for each way a deploy can reach the server, against the real S3 server (Ceph RGW), the AOT content-pull and a
real nginx (Debian's) running the repo's images/nginx/nginx.conf, at FILES files with CHANGED % of them
rewritten per deploy. Also the idle watcher: its S3 requests (radosgw's own log and the watcher's counter) and
its RSS over SECONDS with no deploy.

  bench/deploy-latency.sh ENV_FILE [--files 5000] [--changed 1] [--deploys 20] [--modes poll,webhook,notify,cron]
  bench/deploy-latency.sh ENV_FILE --idle 600

ENV_FILE is what scripts/s3-server-start.sh printed. Modes (each on its own bucket, DEST and watcher):
  poll     content-pull --watch --poll 1s
  webhook  --watch --poll 1h --listen: POST /deploy (X-Hub-Signature-256) sent right after publish returns
  notify   --watch --poll 1h --listen: RGW bucket notification (a persistent HTTP topic, filtered to
           .release.json) POSTs to /notify; the watcher polls the manifest and pulls
  cron     the seed's design, emulated: a pull starts at a uniformly random phase in [0, 60) s after the publish
           (the next minute tick); the latency is that phase plus the measured time from publish to served of a
           one-shot `content-pull --releases` started right after the publish
Before each deploy the script waits a random 0-1 s, so deploys fall at random phases of the 1 s poll.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ROOT, load_average, machine_info, write_results  # noqa: E402

SECRET = "bench-deploy-secret-" + os.urandom(8).hex()


def log(message: str) -> None:
    print(f"deploy-latency: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_env(path: str) -> dict[str, str]:
    env = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v
    return env


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.s3 = read_env(args.env_file)
        self.work = Path(tempfile.mkdtemp(prefix="deploy-latency.", dir=os.environ.get("TMPDIR", "/var/tmp")))
        os.chmod(self.work, 0o755)
        # A copy: scripts/publish.sh may replace artifacts/bin while a long run goes on.
        self.bin = self.work / "content-pull"
        shutil.copy2(args.bin, self.bin)
        self.env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        self.env.update(self.s3)
        self.env.update(AWS_ACCESS_KEY_ID=self.s3["S3_ACCESS_KEY"], AWS_SECRET_ACCESS_KEY=self.s3["S3_SECRET_KEY"], AWS_DEFAULT_REGION=self.s3.get("S3_REGION", "us-east-1"))
        self.rng = random.Random(args.seed)
        self.procs: list[subprocess.Popen] = []
        self.nginx_port = free_port()

    # --- helpers ------------------------------------------------------------------------------------------
    def aws(self, *argv: str) -> str:
        r = subprocess.run(["/usr/bin/aws", "--endpoint-url", self.s3["S3_ENDPOINT"], *argv], env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"aws {' '.join(argv[:2])}: {r.stderr.strip()}")
        return r.stdout

    def corpus(self, build: Path) -> list[Path]:
        rng = random.Random(self.args.seed)
        paths = []
        for i in range(self.args.files):
            p = build / f"d{i % 100:02d}" / f"s{i // 100 % 10}" / f"f{i:06d}.html"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(rng.randbytes(rng.randint(200, 4000)))
            paths.append(p)
        (build / "marker.html").write_text("initial\n")
        return paths

    def change(self, paths: list[Path], build: Path, token: str) -> None:
        count = max(1, round(len(paths) * self.args.changed / 100))
        for p in self.rng.sample(paths, count - 1):  # the marker is one of the changed files
            p.write_bytes(self.rng.randbytes(self.rng.randint(200, 4000)))
        (build / "marker.html").write_text(token + "\n")

    def publish(self, build: Path, bucket: str) -> None:
        r = subprocess.run([str(self.bin), "publish", str(build), f"s3://{bucket}/", "-q"], env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"publish failed: {r.stderr.strip()}")

    def start_nginx(self) -> None:
        config = (ROOT / "images" / "nginx" / "nginx.conf").read_text()
        config = (config.replace(" /tmp/", f" {self.work}/nginx-").replace("/srv/www", str(self.work / "site"))
                  .replace("listen 8080;", f"listen 127.0.0.1:{self.nginx_port};").replace("listen 8081;", f"listen 127.0.0.1:{free_port()};")
                  .replace("access_log /dev/stdout combined;", "access_log off;").replace("error_log /dev/stderr warn;", f"error_log {self.work}/nginx-error.log warn;"))
        path = self.work / "nginx.conf"
        path.write_text(config)
        directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
        self.nginx = subprocess.Popen(["nginx", "-e", str(self.work / "nginx-error.log"), "-p", str(self.work), "-c", str(path), "-g", directives])
        self.procs.append(self.nginx)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.nginx_port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def wait_served(self, token: str, timeout: float = 180) -> float:
        """Polls /marker.html through nginx (one kept-alive connection, every 5 ms) until it says token; the monotonic time it did."""
        deadline = time.monotonic() + timeout
        conn = None
        while time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.nginx_port, timeout=5)
                conn.request("GET", "/marker.html")
                resp = conn.getresponse()
                body = resp.read()
                if resp.status == 200 and body.strip() == token.encode():
                    at = time.monotonic()
                    conn.close()
                    return at
            except (OSError, http.client.HTTPException):
                conn = None
            time.sleep(0.005)
        raise RuntimeError(f"nginx did not serve {token} within {timeout} s")

    def watcher(self, bucket: str, dest: Path, state: Path, poll: str, listen: int | None, extra: list[str] | None = None) -> subprocess.Popen:
        argv = [str(self.bin), f"s3://{bucket}/", str(dest), "--releases", "--delete", "--state-dir", str(state), "--watch", "--poll", poll, *(extra or [])]
        if listen:
            argv += ["--listen", f"127.0.0.1:{listen}"]
        out = open(self.work / f"{bucket}.log", "w")
        p = subprocess.Popen(argv, env=dict(self.env, CONTENT_PULL_DEPLOY_SECRET=SECRET), stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def new_site(self, name: str) -> tuple[str, Path, list[Path], Path, Path]:
        bucket = f"deploy-{name}-{os.urandom(3).hex()}"
        self.aws("s3api", "create-bucket", "--bucket", bucket)
        build = self.work / name / "build"
        paths = self.corpus(build)
        self.publish(build, bucket)
        return bucket, build, paths, self.work / name / "www", self.work / name / "state"

    # --- modes --------------------------------------------------------------------------------------------
    def run_mode(self, mode: str) -> dict:
        bucket, build, paths, dest, state = self.new_site(mode)
        port = free_port()
        watcher = None
        if mode == "notify":
            topic = self.aws("sns", "create-topic", "--name", bucket, "--attributes",
                             json.dumps({"push-endpoint": f"http://127.0.0.1:{port}/notify", "persistent": "true"}))
            arn = json.loads(topic)["TopicArn"]
            self.aws("s3api", "put-bucket-notification-configuration", "--bucket", bucket, "--notification-configuration", json.dumps(
                {"TopicConfigurations": [{"Id": "release", "TopicArn": arn, "Events": ["s3:ObjectCreated:*"],
                                          "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": ".release.json"}]}}}]}))
        if mode == "poll":
            watcher = self.watcher(bucket, dest, state, "1s", None)
        elif mode in ("webhook", "notify"):
            watcher = self.watcher(bucket, dest, state, "1h", port)
        if mode == "cron":
            self.pull(bucket, dest, state)
        self.serve(dest)
        if not hasattr(self, "nginx"):
            self.start_nginx()
        self.wait_served("initial")
        samples = []
        pulls = []
        for i in range(self.args.deploys):
            token = f"{mode}-{i}-{os.urandom(4).hex()}"
            self.change(paths, build, token)
            time.sleep(self.rng.uniform(0, 1.0))
            self.publish(build, bucket)
            t0 = time.monotonic()
            if mode == "webhook":
                body = json.dumps({"deploy": token}).encode()
                sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("POST", "/deploy", body, {"X-Hub-Signature-256": sig, "Content-Type": "application/json"})
                status = conn.getresponse().status
                conn.close()
                if status != 202:
                    raise RuntimeError(f"POST /deploy answered {status}")
            if mode == "cron":
                phase = self.rng.uniform(0, 60)
                started = time.monotonic()
                self.pull(bucket, dest, state)
                pulls.append(time.monotonic() - started)
                samples.append(phase + self.wait_served(token) - t0)
            else:
                samples.append(self.wait_served(token) - t0)
            log(f"{mode} deploy {i + 1}/{self.args.deploys}: {samples[-1]:.3f} s")
        reasons = {}
        if watcher is not None:
            self.stop(watcher)
            for line in (self.work / f"{bucket}.log").read_text().splitlines():
                m = re.search(r"pulling \(([^)]*)\)", line)
                if m:
                    reasons[m.group(1)] = reasons.get(m.group(1), 0) + 1
        return {"mode": mode, "samples": samples, "reasons": reasons, "pulls": pulls}

    def pull(self, bucket: str, dest: Path, state: Path) -> None:
        r = subprocess.run([str(self.bin), f"s3://{bucket}/", str(dest), "--releases", "--delete", "--state-dir", str(state), "-q"], env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"pull failed: {r.stderr.strip()}")

    def serve(self, dest: Path) -> None:
        """nginx serves WORK/site, a link to the mode's DEST (the config's root is fixed when nginx starts)."""
        site = self.work / "site"
        tmp = self.work / "site.tmp"
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(dest)
        tmp.rename(site)

    # --- idle ---------------------------------------------------------------------------------------------
    def idle(self, seconds: int) -> dict:
        bucket, build, paths, dest, state = self.new_site("idle")
        port = free_port()
        watcher = self.watcher(bucket, dest, state, "1s", port, ["--resync", "1h"])
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (dest / "current").exists():
            time.sleep(0.1)
        time.sleep(2)
        rgw_log = Path(self.s3["S3_TEST_STATE_DIR"]) / "log" / "client.rgw.log"
        offset = rgw_log.stat().st_size
        polls0 = self.metric(port, "content_pull_watch_polls")
        rss = []
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            rss.append(self.status(watcher.pid, "VmRSS"))
            time.sleep(1)
        polls1 = self.metric(port, "content_pull_watch_polls")
        hwm = self.status(watcher.pid, "VmHWM")
        anon, file = self.status(watcher.pid, "RssAnon"), self.status(watcher.pid, "RssFile")
        binary = self.mapped_kib(watcher.pid, self.bin.resolve())  # the copy the watcher runs, not --bin
        with open(rgw_log, "rb") as f:
            f.seek(offset)
            new = f.read().decode(errors="replace")
        requests: dict[str, int] = {}
        for m in re.finditer(r'"([A-Z]+) (/' + re.escape(bucket) + r'[^ "?]*)[^ "]* HTTP/1\.1" (\d+)', new):
            k = f"{m.group(1)} {m.group(2)} → {m.group(3)}"
            requests[k] = requests.get(k, 0) + 1
        self.stop(watcher)
        return {"seconds": seconds, "requests": requests, "polls": polls1 - polls0, "rss_max_kib": max(rss), "rss_min_kib": min(rss), "hwm_kib": hwm,
                "anon_kib": anon, "file_kib": file, "binary_kib": binary}

    @staticmethod
    def mapped_kib(pid: int, path: Path) -> int:
        """Resident KiB of the mappings of one file (smaps): how much of RssFile is the binary itself."""
        total, inside = 0, False
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 5 and "-" in fields[0] and ":" in fields[3]:
                inside = len(fields) >= 6 and fields[5] == str(path)
            elif inside and line.startswith("Rss:"):
                total += int(fields[1])
        return total

    @staticmethod
    def status(pid: int, field: str) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"no {field} for {pid}")

    @staticmethod
    def metric(port: int, name: str) -> float:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        return float(next(line.split()[1] for line in text.splitlines() if line.startswith(name + " ")))

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: with 20 samples the p99 is the maximum."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(-(-q * len(ordered) // 1)) - 1))]


TARGETS = {"poll": 2.0, "webhook": 0.5}
LABELS = {"poll": "watch, `--poll 1s`", "webhook": "watch, signed `POST /deploy` after publish", "notify": "watch, RGW bucket notification → `POST /notify`",
          "cron": "seed: cron every minute + full pull (emulated phase)"}


def main() -> int:
    p = argparse.ArgumentParser(prog="bench/deploy-latency.sh", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("env_file")
    p.add_argument("--files", type=int, default=5000)
    p.add_argument("--changed", type=float, default=1.0, help="percent of the files rewritten per deploy (default 1)")
    p.add_argument("--deploys", type=int, default=20)
    p.add_argument("--modes", default="poll,webhook,notify,cron")
    p.add_argument("--idle", type=int, metavar="SECONDS", help="measure an idle watcher for SECONDS instead")
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--bin", default=str(ROOT / "artifacts" / "bin" / "content-pull"))
    p.add_argument("--output", default=str(ROOT / "bench" / "RESULTS.md"))
    p.add_argument("--note", default="")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    machine = machine_info()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    uptime_start = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    bench = Bench(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if args.idle:
            result = bench.idle(args.idle)
            print(json.dumps(result, indent=1))
            block = idle_block(args, result, started, machine, uptime_start)
            label = "deploy-idle"
        else:
            results = [bench.run_mode(m) for m in args.modes.split(",")]
            print(json.dumps(results))
            block = latency_block(args, results, started, machine, uptime_start)
            label = "deploy-latency"
    finally:
        bench.close()
    print(block)
    write_results(Path(args.output), label, block)
    return 0


def header(args, started, machine, uptime_start) -> str:
    from bench import begin_marker
    note = f"**{args.note}**\n\n" if args.note else ""
    return (f"{begin_marker('deploy-idle' if args.idle else 'deploy-latency')}\n"
            f"{note}{started}, `bench/deploy-latency.sh {' '.join(sys.argv[2:])}`; {machine['cpu']}, {machine['cores']} cores, {machine['memory']}, "
            f"kernel {machine['kernel']}; radosgw 16.2 (one mon, memstore OSD) on 127.0.0.1, nginx {nginx_version()} with images/nginx/nginx.conf.\n"
            f"`uptime` at the start: `{uptime_start}`; at the end: `{subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}`.\n\n")


def nginx_version() -> str:
    r = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
    return r.stderr.strip().split("/")[-1]


def latency_block(args, results, started, machine, uptime_start) -> str:
    from bench import end_marker
    lines = [header(args, started, machine, uptime_start),
             f"{args.files:,} files (200-4,000 bytes), {args.changed:g} % of them changed per deploy (the marker page among them), {args.deploys} deploys per mode; "
             "latency = from `content-pull publish` returning to nginx serving the new marker page (polled every 5 ms).\n\n",
             "| mode | deploys | p50 | p99 | max | target | met | pulls by reason |\n|---|---:|---:|---:|---:|---|---|---|\n"]
    for r in results:
        s = r["samples"]
        target = TARGETS.get(r["mode"])
        p99 = percentile(s, 0.99)
        met = "" if target is None else ("yes" if p99 <= target else "**no**")
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(r["reasons"].items())) or (f"one-shot pulls, median {percentile(r['pulls'], 0.5):.2f} s" if r["pulls"] else "")
        lines.append(f"| {LABELS[r['mode']]} | {len(s)} | {percentile(s, 0.5):.3f} s | {p99:.3f} s | {max(s):.3f} s | "
                     f"{'' if target is None else f'p99 ≤ {target:g} s'} | {met} | {reasons} |\n")
    lines.append("\np99 is the nearest-rank percentile: with 20 samples it is the maximum.\n")
    lines.append(f"{end_marker('deploy-latency')}\n")
    return "".join(lines)


def idle_block(args, r, started, machine, uptime_start) -> str:
    from bench import end_marker
    total = sum(r["requests"].values())
    reqs = "; ".join(f"`{k}` × {v}" for k, v in sorted(r["requests"].items()))
    only_polls = all(k.startswith("GET /") and ".release.json" in k for k in r["requests"])
    return (header(args, started, machine, uptime_start) +
            f"Idle watcher: `content-pull --watch --releases --poll 1s --resync 1h --listen` after its first pull of {args.files:,} files, "
            f"{r['seconds']} s without a deploy.\n\n"
            "| measure | value | target | met |\n|---|---:|---|---|\n"
            f"| S3 requests in radosgw's log for the bucket | {total} | only the polls | {'yes' if only_polls else '**no**'} |\n"
            f"| polls counted by the watcher (`content_pull_watch_polls`) | {r['polls']:.0f} | | |\n"
            f"| RSS during the idle period (VmRSS, sampled every second), min / max | {r['rss_min_kib'] / 1024:.1f} / {r['rss_max_kib'] / 1024:.1f} MiB | < 20 MiB | {'yes' if r['rss_max_kib'] < 20 * 1024 else '**no**'} |\n"
            f"| of the RSS at the end: anonymous (heap, stacks) / file-backed (RssAnon / RssFile) | {r['anon_kib'] / 1024:.1f} / {r['file_kib'] / 1024:.1f} MiB | | |\n"
            f"| of the file-backed RSS: the content-pull binary's own pages (clean, shared with the page cache) | {r['binary_kib'] / 1024:.1f} MiB | | |\n"
            f"| peak RSS of the whole run, first pull included (VmHWM) | {r['hwm_kib'] / 1024:.1f} MiB | | |\n\n"
            f"Requests by kind: {reqs}.\n"
            f"{end_marker('deploy-idle')}\n")


if __name__ == "__main__":
    sys.exit(main())
