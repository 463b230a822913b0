"""
Fast tests of bench.py's own logic (no S3 server, no tools): the delay proxy, the request count, the round-trip
parser, the slopes and the scale report's targets. Run by tests/Bench.Tests (python3 -m unittest bench/test_bench.py).
"""

import argparse
import datetime
import os
import socket
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

    def test_a_superlinear_no_change_run_misses_the_flat_target(self):
        results = {(f"scale {n}", "no-change", "content-pull"): self.sample((n / 1000) ** 2 * 1e-4, cpu=(n / 1000) ** 2 * 1e-4) for n in (1000, 10000, 100000)}
        flat = [m for label, _, m in self.report(results).targets if "flat" in label]
        self.assertEqual([False, False], flat)


if __name__ == "__main__":
    unittest.main()
