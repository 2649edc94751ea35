"""Input limits under hostile inputs: how long a refusal takes and how much memory it costs.

Run from the project root: ``.venv/bin/python bench/bench_limits.py`` (about a
minute). Prints one line per case and writes ``bench/out/limits.json``.

Cases (the attacks of issue 11):
1. four concurrent uploads of a 1.5 MB gzip that inflates to 1.5 GB, through
   ``check_upload`` with the default limits (50 MB upload, 2 parses at once);
2. one valid gzip upload that unpacks to just under the 50 MB limit (what a
   legitimate upload at the limit costs the parse worker), and the same with a
   decimal price in its last row (the chunks' types differ: parsed whole);
3. a 48 MB one-line CSV of 24M columns, and a 3-row file with 1M extra columns;
4. ``python -m ml score /dev/zero`` with a 256 MB input limit.

Memory is the resident set (psutil), sampled every 10 ms: this process (the
"server") and its parse worker processes separately, as a rise over the
baseline measured after the workers have started.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from dashboard import parse_pool  # noqa: E402
from dashboard.uploads import check_upload  # noqa: E402
from ml.config import MEGABYTE, get_settings  # noqa: E402
from ml.data.loading import load_events  # noqa: E402
from ml.errors import ClickstreamError  # noqa: E402
from ml.serving.registry import Registry  # noqa: E402

OUT = PROJECT_ROOT / "bench" / "out" / "limits.json"
UCI_HEADER = (
    "year;month;day;order;country;session ID;page 1 (main category);page 2 (clothing model);colour;location;"
    "model photography;price;price 2;page"
)
MB = MEGABYTE


class RssSampler:
    """Peak RSS of this process and of its children (largest single child and all together), every 10 ms."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.peak_self = self.peak_child = self.peak_children = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _children(self) -> list[int]:
        sizes = []
        for child in self.me.children(recursive=True):
            try:
                sizes.append(child.memory_info().rss)
            except psutil.Error:
                continue
        return sizes

    def _run(self) -> None:
        while not self._stop.is_set():
            sizes = self._children()
            self.peak_self = max(self.peak_self, self.me.memory_info().rss)
            self.peak_child = max([self.peak_child, *sizes])
            self.peak_children = max(self.peak_children, sum(sizes))
            time.sleep(0.01)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def snapshot() -> tuple[int, int, int]:
    """(this process, largest child, all children) RSS now."""
    me = psutil.Process()
    sizes = [c.memory_info().rss for c in me.children(recursive=True)]
    return me.memory_info().rss, max(sizes, default=0), sum(sizes)


def data_url(data: bytes) -> str:
    return "data:application/gzip;base64," + base64.b64encode(data).decode("ascii")


def gzip_of(parts: list[bytes], repeat_tail: bytes, tail_bytes: int) -> bytes:
    """gzip of ``parts`` followed by ``tail_bytes`` of ``repeat_tail``, compressed in a stream."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [packer.compress(p) for p in parts]
    block = repeat_tail * (MB // len(repeat_tail))
    for _ in range(tail_bytes // len(block)):
        out.append(packer.compress(block))
    out.append(packer.flush())
    return b"".join(out)


def uci_rows(n: int) -> bytes:
    lines = [f"2008;4;{i % 28 + 1};{i % 5 + 1};29;{i // 5 + 1};1;A{i % 97};1;5;1;{28 + i % 50};2;1" for i in range(n)]
    return ("\n".join([UCI_HEADER, *lines]) + "\n").encode()


def outcome(call) -> tuple[str, float]:
    start = time.perf_counter()
    try:
        result = call()
        text = f"accepted ({len(result.loaded.events):,} events)" if hasattr(result, "loaded") else "accepted"
    except ClickstreamError as exc:
        text = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
    return text, time.perf_counter() - start


def warm_up(settings) -> None:
    small = data_url(gzip_of([uci_rows(20)], b"\n", 0))
    with ThreadPoolExecutor(settings.limits.max_parses) as pool:
        list(pool.map(lambda _: check_upload(settings, Registry(settings.models_dir), small, "warm.csv.gz"), range(4)))


def bench_bombs(settings) -> dict:
    bomb = gzip_of([uci_rows(10)], b"\n", 1536 * MB)
    payload = data_url(bomb)
    base_self, base_child, base_children = snapshot()
    with RssSampler() as rss, ThreadPoolExecutor(4) as pool:
        start = time.perf_counter()
        calls = [lambda: check_upload(settings, Registry(settings.models_dir), payload, "bomb.csv.gz")] * 4
        results = list(pool.map(outcome, calls))
        wall = time.perf_counter() - start
    return {
        "case": "4 concurrent gzip uploads, each 1.5 MB inflating to 1.5 GB (upload limit 50 MB, 2 parses at once)",
        "gzip_bytes": len(bomb),
        "outcomes": [r[0] for r in results],
        "seconds_each": [round(r[1], 2) for r in results],
        "wall_s": round(wall, 2),
        "server_rss_baseline_mb": round(base_self / MB),
        "server_rss_rise_mb": round((rss.peak_self - base_self) / MB),
        "worker_rss_baseline_mb": round(base_child / MB),
        "worker_rss_rise_mb": round((rss.peak_child - base_child) / MB),
        "all_workers_rss_rise_mb": round((rss.peak_children - base_children) / MB),
    }


def bench_valid_at_limit(settings, decimal_price_last: bool = False) -> dict:
    text = uci_rows(1_250_000)
    while len(text) > settings.max_upload_bytes:
        text = text[: text.rfind(b"\n", 0, len(text) - 1) + 1]
    if decimal_price_last:  # one decimal price in the last row: the chunks' types differ, the file is parsed whole
        head, last, _ = text.rsplit(b"\n", 2)
        cells = last.split(b";")
        cells[11] = b"30.5"
        text = head + b"\n" + b";".join(cells) + b"\n"
    packed = gzip_of([text], b"\n", 0)
    payload = data_url(packed)
    base_self, base_child, _ = snapshot()
    with RssSampler() as rss:
        result, seconds = outcome(lambda: check_upload(settings, Registry(settings.models_dir), payload, "ok.csv.gz"))
    limit = settings.max_upload_bytes
    last = ", a decimal price in its last row" if decimal_price_last else ""
    return {
        "case": f"one valid gzip upload unpacking to {len(text) / MB:.1f} MB (limit {limit // MB} MB){last}",
        "outcome": result,
        "seconds": round(seconds, 2),
        "gzip_bytes": len(packed),
        "worker_rss_rise_mb": round((rss.peak_child - base_child) / MB),
        "worker_rise_over_limit": round((rss.peak_child - base_child) / limit, 2),
        "server_rss_rise_mb": round((rss.peak_self - base_self) / MB),
        "server_rise_over_limit": round((rss.peak_self - base_self) / limit, 2),
    }


def bench_wide(folder: Path) -> list[dict]:
    cases = []
    one_line = folder / "one-line.csv"
    one_line.write_bytes(b"a" + b",a" * (24_000_000 - 1))
    header = UCI_HEADER + "".join(f";x{i}" for i in range(1_000_000))
    wide_header = folder / "wide-header.csv"
    wide_header.write_bytes((header + "\n").encode() + uci_rows(3).split(b"\n", 1)[1])
    wide_rows = folder / "wide-rows.csv"
    wide_rows.write_bytes(b"\n".join(r + b";1" * 1_000_000 if i else r for i, r in enumerate(uci_rows(3).splitlines())))
    for path, what in (
        (one_line, "48 MB one-line CSV of 24M columns"),
        (wide_header, "3-row file with 1M extra header columns"),
        (wide_rows, "3-row file whose rows have 1M extra fields"),
    ):
        result, seconds = outcome(lambda p=path: load_events(p, max_bytes=64 * MB))
        cases.append({"case": what, "bytes": path.stat().st_size, "outcome": result, "seconds": round(seconds, 3)})
    return cases


def _cli_score(folder: Path, source: str) -> tuple[int, str, float, int]:
    """(exit code, second line of stderr, seconds, peak RSS in MB) of one ``python -m ml score`` run."""
    env = {**os.environ, "CLICKSTREAM_MAX_INPUT_MB": "256", "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-m", "ml", "--models-dir", str(folder / "m"), "score", source, "-o", "o.csv"]
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=folder, env=env, stderr=subprocess.PIPE, text=True)
    message = child.stderr.read().strip().splitlines()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    text = message[1].strip() if len(message) > 1 else " ".join(message)
    return os.waitstatus_to_exitcode(status), text, wall, round(usage.ru_maxrss / 1024)


def bench_dev_zero(folder: Path) -> dict:
    tiny = folder / "tiny.csv"
    tiny.write_bytes(b"not,a,click,file\n1,2,3,4\n")
    _, _, base_seconds, base_rss = _cli_score(folder, str(tiny))
    code, message, seconds, rss = _cli_score(folder, "/dev/zero")
    return {
        "case": "python -m ml score /dev/zero (CLICKSTREAM_MAX_INPUT_MB=256)",
        "exit_code": code,
        "message": message,
        "seconds": round(seconds, 2),
        "peak_rss_mb": rss,
        "same_command_on_a_tiny_bad_file": {"seconds": round(base_seconds, 2), "peak_rss_mb": base_rss},
    }


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as tmp:
        folder = Path(tmp)
        settings = get_settings().with_overrides(
            cache_dir=folder / "cache", models_dir=folder / "models", upload_quota_bytes=10**12
        )
        report = {
            "limits": {
                "max_upload_mb": settings.max_upload_bytes // MB,
                "max_parses": settings.limits.max_parses,
                "parse_wait_s": settings.limits.parse_wait_s,
                "max_columns": settings.limits.max_columns,
                "max_line_kb": settings.limits.max_line_bytes // 1024,
            },
            "cpus": os.cpu_count(),
            "load_before": os.getloadavg()[0],
        }
        report["dev_zero"] = bench_dev_zero(folder)
        print(json.dumps(report["dev_zero"]), flush=True)
        report["wide"] = bench_wide(folder)
        for case in report["wide"]:
            print(json.dumps(case), flush=True)
        warm_up(settings)
        report["bombs"] = bench_bombs(settings)
        print(json.dumps(report["bombs"]), flush=True)
        report["valid_at_limit"] = bench_valid_at_limit(settings)
        print(json.dumps(report["valid_at_limit"]), flush=True)
        report["valid_at_limit_parsed_whole"] = bench_valid_at_limit(settings, decimal_price_last=True)
        print(json.dumps(report["valid_at_limit_parsed_whole"]), flush=True)
        report["load_after"] = os.getloadavg()[0]
        parse_pool.shutdown_pools()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
