"""Measurement helpers shared by the benchmark driver and its workers (standard library only).

Memory figures come from Linux: ``ru_maxrss`` (peak resident set, KiB) and
``/proc/self/status`` (``VmRSS`` now, ``VmHWM`` peak). Writing ``5`` to
``/proc/self/clear_refs`` resets the peak to the current RSS, which lets a
worker report the peak of one step (feature building) separately from the
peak of the step before it (loading the clicks).

Why workers reset the peak as soon as they start: ``ru_maxrss`` of a process
started by ``exec`` also counts the peak of the address space it replaced, so a
child of a large parent would otherwise report the parent's peak.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
BUNDLED_FILE = PROJECT_ROOT / "data" / "e-shop-clothing-2008.csv.gz"
LIBRARIES = ("numpy", "pandas", "scikit-learn", "xgboost", "imbalanced-learn", "joblib", "pyarrow", "scipy")
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "CLICKSTREAM_MAX_INPUT_MB")


# ---------------------------------------------------------------- memory
def _status_kib(field: str) -> int | None:
    """A ``Vm*`` field of ``/proc/self/status`` in KiB, or None where there is no procfs."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def process_status_kib(pid: int, field: str) -> int | None:
    """A ``Vm*`` field of another process's ``/proc/PID/status`` in KiB (None if unavailable)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_kib() -> int | None:
    """The current resident set size of this process, KiB."""
    return _status_kib("VmRSS")


def hwm_kib() -> int | None:
    """The peak resident set size of this address space (``VmHWM``), KiB."""
    return _status_kib("VmHWM")


def peak_rss_kib() -> int:
    """``getrusage(RUSAGE_SELF).ru_maxrss``: the process's peak RSS, KiB on Linux."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def reset_peak_rss() -> bool:
    """Reset the peak RSS to the current RSS; False if the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def mb(kib: float | None) -> float | None:
    """KiB to decimal megabytes (10^6 bytes)."""
    return None if kib is None else kib * 1024 / 1e6


# ---------------------------------------------------------------- timing
def summarise_times(seconds: Sequence[float]) -> dict[str, object]:
    """Best, median and every repetition of a timed step."""
    return {
        "best": min(seconds),
        "median": statistics.median(seconds),
        "runs": list(seconds),
        "repeats": len(seconds),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarise_latencies(seconds: Sequence[float]) -> dict[str, float | int]:
    """Median, p95, max, min and mean of request times, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "calls": len(ms),
        "median_ms": statistics.median(ms),
        "p95_ms": percentile(ms, 95),
        "max_ms": max(ms),
        "min_ms": min(ms),
        "mean_ms": statistics.fmean(ms),
    }


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages, to flag measurements taken on a busy machine."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ---------------------------------------------------------------- other processes' CPU use
def _machine_busy_seconds() -> float | None:
    """CPU seconds every process on the machine has used since boot (``/proc/stat``, all cores)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice, already counted in user/nice]
    busy = fields[0] + fields[1] + fields[2] + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds(include_children: bool) -> float:
    """CPU seconds of this process (every thread) and, optionally, of its waited-for children."""
    who = [resource.RUSAGE_SELF] + ([resource.RUSAGE_CHILDREN] if include_children else [])
    return sum(resource.getrusage(w).ru_utime + resource.getrusage(w).ru_stime for w in who)


@dataclass
class CpuMeter:
    """How much CPU *other* processes used while we measured: machine-wide busy time minus our own.

    The load average cannot tell this once a measurement has started, because it
    counts our own work too. ``include_children`` counts children that have been
    waited for (subprocesses run to completion), so a driver can meter its workers.
    """

    include_children: bool = False
    _wall: float = 0.0
    _machine: float | None = None
    _own: float = 0.0

    def start(self) -> CpuMeter:
        self._wall = time.perf_counter()
        self._machine = _machine_busy_seconds()
        self._own = _own_cpu_seconds(self.include_children)
        return self

    def others_cores(self) -> float | None:
        """Average number of cores busy with other processes since ``start`` (None without procfs)."""
        machine = _machine_busy_seconds()
        wall = time.perf_counter() - self._wall
        if machine is None or self._machine is None or wall <= 0:
            return None
        own = _own_cpu_seconds(self.include_children) - self._own
        return max(0.0, (machine - self._machine - own) / wall)


def others_cpu_now(seconds: float = 2.0) -> float | None:
    """Cores busy with other processes over the next ``seconds`` (we sleep meanwhile)."""
    meter = CpuMeter().start()
    time.sleep(seconds)
    return meter.others_cores()


def wait_until_quiet(
    max_others: float, timeout: float, max_load: float | None = None, sample_seconds: float = 3.0
) -> dict[str, object]:
    """Wait until other processes use at most ``max_others`` cores and, if given, the 1-minute load is at most
    ``max_load``; give up after ``timeout`` seconds. Returns what was measured last and how long it took.
    """
    started = time.monotonic()
    last_note = started
    while True:
        others = others_cpu_now(sample_seconds)
        load = load_average()
        quiet = (others is None or others <= max_others) and (max_load is None or load is None or load[0] <= max_load)
        waited = time.monotonic() - started
        if quiet or waited >= timeout:
            return {
                "quiet": quiet,
                "waited_seconds": round(waited, 1),
                "others_cores": None if others is None else round(others, 3),
                "load_average": load,
            }
        if time.monotonic() - last_note >= 60:
            print(
                f"    waiting for a quiet machine: other processes use {others:.2f} cores, load {load}"
                f" ({waited:.0f} s so far)",
                file=sys.stderr,
            )
            last_note = time.monotonic()
        time.sleep(5)


# ---------------------------------------------------------------- machine and project
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _total_ram_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_facts(libraries: Sequence[str] = LIBRARIES) -> dict[str, object]:
    """CPU, memory, OS, Python and library versions, and the time of the run."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    ram = _total_ram_bytes()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "cpu_model": _cpu_model(),
        "total_ram_bytes": ram,
        "total_ram_gb": None if ram is None else round(ram / 1e9, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "libraries": {name: _version(name) for name in libraries},
        "thread_env": {name: os.environ.get(name) for name in THREAD_ENV_VARS if os.environ.get(name)},
    }


def git_state() -> dict[str, object]:
    """The project's commit and whether the working tree has changes (read-only git calls)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


def write_report(report: dict, stem: str, render: Callable[[dict], str]) -> tuple[Path, Path]:
    """``bench/out/<stem>.json`` and ``<stem>.md`` (the markdown from ``render``)."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    json_path, md_path = OUT_DIR / f"{stem}.json", OUT_DIR / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(render(report), encoding="utf-8")
    return json_path, md_path


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
