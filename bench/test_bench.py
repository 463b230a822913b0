"""
Fast tests of bench.py's own logic (no S3 server, no tools): the delay proxy, the request count, the round-trip
parser, the slopes and the scale report's targets. Run by tests/Bench.Tests (python3 -m unittest bench/test_bench.py).
"""

import argparse
import datetime
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench.py itself, not the bench/ directory as a package
import bench  # noqa: E402


def echo_server():
    """A thread echoing every byte of one connection back; returns its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve():
        with listener:
            conn, _ = listener.accept()
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


class DelayProxyTests(unittest.TestCase):
    def test_a_ping_pong_through_the_proxy_takes_the_rtt_set(self):
        # The median of 10 one-byte round trips: at least the RTT (the proxy holds each chunk RTT/2 each way),
        # and not much more. 1 ms against 60 ms shows the delay is the proxy's, not the machine's.
        fast = bench.measure_proxy_rtt(0.001)
        slow = bench.measure_proxy_rtt(0.06)
        # The upper bounds are generous: CI shares 2 cores with builds.
        self.assertGreaterEqual(slow, 0.06)
        self.assertLess(slow, 0.06 * 2 + 0.02)
        self.assertLess(fast, 0.04)

    def test_bytes_pass_unchanged_and_in_order_with_a_small_bounded_queue(self):
        port = echo_server()
        data = os.urandom(3 * 1024 * 1024)
        with bench.DelayProxy("127.0.0.1", port, 0.004) as proxy:
            proxy.QUEUE = 2  # the bound: the proxy stops reading while 2 chunks wait
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=20) as s:
                received = bytearray()
                sender = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
                sender.start()
                while chunk := s.recv(65536):
                    received += chunk
                sender.join(20)
        self.assertEqual(len(data), len(received))
        self.assertTrue(bytes(received) == data, "the proxy changed or reordered bytes")

    def test_a_new_connection_waits_one_rtt_like_a_tcp_handshake(self):
        port = echo_server()
        with bench.DelayProxy("127.0.0.1", port, 0.05) as proxy:
            started = time.perf_counter()  # before the connect: the proxy's wait starts when it accepts
            s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
            s.sendall(b"x")
            self.assertEqual(b"x", s.recv(1))
            self.assertGreaterEqual(time.perf_counter() - started, 0.1)  # handshake RTT + the round trip
            s.close()

    def test_stop_ends_the_proxy(self):
        proxy = bench.DelayProxy("127.0.0.1", echo_server(), 0.001)
        proxy.start()
        port = proxy.port
        proxy.stop()
        self.assertFalse(proxy._thread.is_alive())
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


class RttTests(unittest.TestCase):
    def test_parse(self):
        self.assertAlmostEqual(0.02, bench.parse_rtt("20ms"))
        self.assertAlmostEqual(0.05, bench.parse_rtt("0.05s"))
        self.assertAlmostEqual(0.02, bench.parse_rtt("20"))
        self.assertEqual("20ms", bench.format_rtt(0.02))
        for bad in ("", "abc", "0", "0ms", "2s", "-5ms", "20 min"):
            with self.assertRaises(argparse.ArgumentTypeError, msg=bad):
                bench.parse_rtt(bad)


class RequestLogTests(unittest.TestCase):
    def test_counts_the_beast_access_lines_written_after_the_mark(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "client.rgw.log"
            line = '2026-12-02T02:11:23.879+0000 7fa4 1 beast: 0x7fa5700e56e0: 127.0.0.1 - infratools [02/Dec/2026:02:11:23.875 +0000] "{} /b?list-type=2 HTTP/1.1" 200 231 - "rclone" - latency=0.004s\n'
            path.write_text(line.format("GET") + "2026-12-02T02:11:23.879+0000 7fa4 1 ====== req done req=0x7fa5 op status=0 http_status=200 ======\n")
            log = bench.RequestLog(path)
            mark = log.mark()
            with open(path, "a") as f:
                for method in ("GET", "HEAD", "PUT", "POST", "DELETE"):
                    f.write(line.format(method))
                f.write("2026-12-02T02:11:24 7fa4 1 ====== starting new request req=0x7fa5 =====\n")
            self.assertEqual(5, log.since(mark, settle=0.01))
            self.assertEqual(6, log.count(0))
            self.assertEqual(0, bench.RequestLog(Path(d) / "missing").since(0, settle=0.01))


class CpuMeterTests(unittest.TestCase):
    def test_counts_the_cpu_a_process_spends_and_not_the_time_it_sleeps(self):
        with tempfile.TemporaryDirectory() as d:
            busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\ntime.sleep(30)"])
            idle = subprocess.Popen(["sleep", "30"])
            try:
                (Path(d) / "pids").write_text(f"mon {busy.pid}\nosd {idle.pid}\ngone 999999999\n")
                meter = bench.CpuMeter.of_server(Path(d))
                self.assertEqual(3, len(meter.paths))
                deadline = time.monotonic() + 10
                while meter.seconds() < 0.4 and time.monotonic() < deadline:
                    time.sleep(0.05)
                self.assertGreaterEqual(meter.seconds(), 0.39)  # the busy loop's 0.4 s, counted in clock ticks
                self.assertLess(meter.seconds(), 1.5)
                only_idle = bench.CpuMeter([Path(f"/proc/{idle.pid}/stat")])
                self.assertLess(only_idle.seconds(), 0.05)
            finally:
                busy.kill()
                idle.kill()
                busy.wait()
                idle.wait()

    def test_a_thread_of_this_process_is_measured_alone(self):
        ids, stop = [], threading.Event()

        def spin():
            ids.append(threading.get_native_id())
            end = time.thread_time() + 0.3
            while time.thread_time() < end:
                pass
            stop.wait(10)

        worker = threading.Thread(target=spin, daemon=True)
        worker.start()
        try:
            deadline = time.monotonic() + 10
            while not ids and time.monotonic() < deadline:
                time.sleep(0.01)
            meter = bench.CpuMeter.of_thread(ids[0])
            while meter.seconds() < 0.3 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertGreaterEqual(meter.seconds(), 0.29)
            self.assertLess(meter.seconds(), 1.0)
        finally:
            stop.set()
            worker.join(10)

    def test_nothing_to_measure_is_an_error(self):
        with self.assertRaises(bench.BenchError):
            bench.CpuMeter([])


class FloorTests(unittest.TestCase):
    """The rows that say whether a target can be reached on this machine at all (the server's CPU shares its cores)."""

    machine = {"cpu": "cpu", "cores": "2", "memory": "24 GB", "kernel": "6", "load_start": "1", "load_end": "2"}

    def pull_report(self, server_cpu, proxy_cpu):
        results = {("pull", "initial", "content-pull"): [bench.Sample(8.0, 40 * 1024, 3.6, 5006, server_cpu, proxy_cpu)],
                   ("pull", "initial", "rclone-16"): [bench.Sample(12.0, 97 * 1024, 5.7, 5061, 9.0, 2.5)]}
        args = SimpleNamespace(rtt=0.02, only=["pull"], server_latency=False, quick=False)
        b = SimpleNamespace(results=results, startup={}, sizes={}, cron=None)
        report = bench.Report(b, args, datetime.datetime(2026, 12, 8), self.machine, {}, "server")
        report.evaluate_targets()
        return next(t for t in report.targets if t[0].startswith("the least this machine allows"))

    def test_a_server_that_needs_more_than_the_target_leaves_on_these_cores_makes_it_unreachable(self):
        label, shown, verdict = self.pull_report(8.0, 2.5)  # (8.0 + 2.5) / 2 cores = 5.25 s = 0.44× of 12 s
        self.assertIn("rclone-16's wall time", label)
        self.assertEqual("0.44× (8.0 + 2.5 CPU s)", shown)
        self.assertEqual("**over 0.25×: not reachable on this machine**", verdict)
        self.assertEqual("over 0.25×: not reachable on this machine", bench.met_text(verdict, console=True))

    def test_a_server_that_leaves_room_keeps_the_target_reachable(self):
        _, shown, verdict = self.pull_report(4.0, 1.0)  # 2.5 s = 0.21× of 12 s
        self.assertEqual("0.21× (4.0 + 1.0 CPU s)", shown)
        self.assertEqual("under 0.25×: reachable here", verdict)

    def test_without_the_server_cpu_the_floor_is_not_measured(self):
        self.assertEqual("not measured", self.pull_report(None, None)[1])


class SlopeTests(unittest.TestCase):
    def test_a_linear_cost_has_equal_slopes_and_a_step_of_one(self):
        cost = {n: 0.05 + n * 1e-5 for n in (1000, 10000, 100000)}  # 50 ms fixed + 10 ms per 1,000 objects
        pairs = bench.slopes(cost)
        self.assertEqual([(1000, 10000), (10000, 100000)], [(a, b) for a, b, _ in pairs])
        for _, _, slope in pairs:
            self.assertAlmostEqual(0.01, slope)
        self.assertAlmostEqual(1.0, bench.step(pairs))

    def test_a_quadratic_cost_shows_as_a_step(self):
        pairs = bench.slopes({n: (n / 1000) ** 2 * 1e-3 for n in (1000, 10000, 100000)})
        self.assertGreater(bench.step(pairs), bench.FLAT)

    def test_unmeasured_sizes_give_no_slope(self):
        pairs = bench.slopes({1000: 1.0, 10000: None, 100000: 3.0})
        self.assertEqual([None, None], [s for _, _, s in pairs])
        self.assertIsNone(bench.step(pairs))


class ScaleReportTests(unittest.TestCase):
    def report(self, results):
        args = SimpleNamespace(sizes=[1000, 10000, 100000], rtt=None, note="", seed=7, rounds=3)
        b = SimpleNamespace(results=results, checks=[("scale 1000", "initial", "content-pull", None)], notes=["a note"],
                            runner=SimpleNamespace(timed_out=["scale 100000 initial s3cmd: stopped after 900 s"], failures=[]),
                            scale_corpus={1000: (1000, 4_700_000, 10)}, scale_upload={1000: 1.5})
        machine = {"cpu": "cpu", "cores": "2", "memory": "24 GB", "kernel": "6", "load_start": "1", "load_end": "2"}
        report = bench.ScaleReport(b, args, datetime.datetime(2026, 12, 2), machine, {"rclone": "1"}, "server")
        report.evaluate_targets()
        return report

    @staticmethod
    def sample(wall, rss_mib=50, cpu=0.1, requests=10):
        return [bench.Sample(wall, int(rss_mib * 1024), cpu, requests)]

    def test_met_missed_and_unmeasured_targets_are_all_reported(self):
        results = {}
        for n in (1000, 10000, 100000):
            results[(f"scale {n}", "no-change", "content-pull")] = self.sample(0.02 + n * 2e-5, cpu=0.01 + n * 1e-5)  # 2.02 s at 100k: over 2 s
            results[(f"scale {n}", "no-change", "rclone-16")] = self.sample(n * 1e-3, rss_mib=300)
            results[(f"scale {n}", "initial", "content-pull")] = self.sample(n * 1e-3)
            results[(f"scale {n}", "initial", "rclone-16")] = self.sample(n * 1e-3)
        report = self.report(results)
        met = {label.split(" (")[0].split(":")[0]: m for label, _, m in report.targets}
        self.assertIs(False, met["no-change at 100,000 objects ≤ 2 s"])
        self.assertIs(True, next(m for label, _, m in report.targets if "peak RSS ≤ 0.5×" in label))
        self.assertIsNone(met["no-change at 100,000 objects ≤ 0.2× s3cmd"])  # s3cmd not measured
        self.assertIs(False, met["initial pull at 100,000 objects ≤ 0.25× rclone-16"])
        self.assertTrue(all(m is True for label, _, m in report.targets if "flat" in label))
        text = report.markdown()
        self.assertIn("| no-change at 100,000 objects ≤ 0.2× s3cmd | not measured | not measured |", text)
        self.assertIn("| no-change at 100,000 objects ≤ 2 s (loopback) | 2.0 s | **no** |", text)
        self.assertIn("not measured: scale 100000 initial s3cmd: stopped after 900 s", text)
        self.assertIn("| 1% changed | content-pull | 1,000 | not measured |", text)
        self.assertIn("no-change: 3 rounds, sizes and tools interleaved, medians", text)
        # The sample has no server CPU: the floor row says so instead of a number.
        self.assertIn("| the least this machine allows for the target above: (S3 server CPU s + ours) ÷ 2 cores, and with a client that costs nothing | not measured | not measured |", text)

    def test_the_floor_of_the_2_second_target_tells_a_slow_client_from_a_slow_server(self):
        def floor(server_cpu, client_cpu):
            results = {(f"scale {n}", "no-change", "content-pull"): [bench.Sample(3.0, 90 * 1024, client_cpu, 101, server_cpu)] for n in (1000, 10000, 100000)}
            return next(t for t in self.report(results).targets if t[0].startswith("the least"))[1:]
        self.assertEqual(("2.50 s and 1.50 s (3.00 + 2.00 CPU s)", "**not reachable with this client's CPU**"), floor(3.0, 2.0))
        self.assertEqual(("2.75 s and 2.25 s (4.50 + 1.00 CPU s)", "**not reachable by any client on this machine**"), floor(4.5, 1.0))
        self.assertEqual(("1.75 s and 1.25 s (2.50 + 1.00 CPU s)", "reachable here"), floor(2.5, 1.0))

    def test_a_superlinear_no_change_run_misses_the_flat_target(self):
        results = {(f"scale {n}", "no-change", "content-pull"): self.sample((n / 1000) ** 2 * 1e-4, cpu=(n / 1000) ** 2 * 1e-4) for n in (1000, 10000, 100000)}
        flat = [m for label, _, m in self.report(results).targets if "flat" in label]
        self.assertEqual([False, False], flat)


if __name__ == "__main__":
    unittest.main()
