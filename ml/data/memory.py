"""Reuse freed memory while features are built, instead of asking the kernel for fresh pages each time.

Feature building makes many short-lived arrays of tens of megabytes (ten
million events of eight bytes are 80 MB). By default glibc hands each one its
own ``mmap`` and returns it to the kernel when it is freed, and NumPy asks for
transparent huge pages on such arrays; so every temporary is new memory that
the kernel must fault in and zero (huge pages possibly compacted first). On
the 2-core development VM that kernel time was most of the spread between
runs: the same pipeline took 1.3 s with its pages still warm from a previous
run and 2.6-4.0 s with pages idle for a few seconds (``bench/bench_events.py``;
figures in ``bench/README.md``).

``reusing_freed_memory`` (a decorator) keeps the heap's freed blocks for the
next array while the outermost decorated call runs: glibc serves large blocks
from the heap (``M_MMAP_MAX`` 0) and keeps what is freed (a high
``M_TRIM_THRESHOLD``), and NumPy's huge-page advice is off. When the outermost
call returns, both go back to their defaults and ``malloc_trim`` hands the
free memory back, so a server process does not keep a pipeline's peak (the
thresholds then stay at glibc's defaults instead of adapting, as they do once
any program sets them; a forked child starts with the defaults). Only
where the allocator is glibc's; elsewhere (musl, macOS, Windows) it does
nothing. The values computed are the same either way: only where memory comes from changes.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# glibc's mallopt parameters (malloc.h) and defaults
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
PROMPT_MMAP_THRESHOLD = 16 * 1024  # glibc starts at 128 KB and raises it as large blocks are freed
DEFAULT_TRIM_THRESHOLD = 128 * 1024
DEFAULT_MMAP_MAX = 65536
KEEP_FREED = 2**31 - 1  # the largest value mallopt takes: keep up to 2 GB of freed heap

_lock = threading.Lock()
_depth = 0
_huge_pages_before: bool | None = None


def _glibc() -> Any | None:
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _glibc()


def _set_huge_pages(enabled: bool) -> bool | None:
    """Turn NumPy's huge-page advice for new arrays on or off; the previous setting (None: not available)."""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:
        return None
    return bool(_set_madvise_hugepage(enabled))


def _enter() -> None:
    global _depth, _huge_pages_before  # noqa: PLW0603 - one process-wide nesting count
    with _lock:
        _depth += 1
        if _depth > 1:
            return
        if _LIBC is not None:
            _LIBC.mallopt(M_MMAP_MAX, 0)
            _LIBC.mallopt(M_TRIM_THRESHOLD, KEEP_FREED)
        _huge_pages_before = _set_huge_pages(False)


def _leave() -> None:
    global _depth  # noqa: PLW0603
    with _lock:
        _depth -= 1
        if _depth:
            return
        if _huge_pages_before is not None:
            _set_huge_pages(_huge_pages_before)
        if _LIBC is not None:
            _LIBC.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
            _LIBC.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
            _LIBC.malloc_trim(0)


def _reset_in_child() -> None:
    """A forked child has none of the parent's threads: whatever they were running is not running here."""
    global _lock, _depth  # noqa: PLW0603 - a new process: a fresh lock and count
    _lock = threading.Lock()  # it may have been held by a parent's thread at the fork
    if _depth:
        _depth = 1
        _leave()  # restore the defaults the parent's running call had changed


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


def active() -> bool:
    """Whether a decorated call is running (in any thread)."""
    return _depth > 0


def reusing_freed_memory(function: F) -> F:
    """Run ``function`` with freed memory kept for reuse (see the module); nested calls share one span."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _enter()
        try:
            return function(*args, **kwargs)
        finally:
            _leave()

    return wrapper  # type: ignore[return-value]


def return_freed_memory() -> None:
    """For a process that parses one file after another (an upload's parse worker): freed arrays go back to the kernel.

    glibc serves blocks under its ``mmap`` threshold from the heap, whose freed
    pieces stay in the resident set unless they lie at its top, and it raises
    the threshold (from 128 KB up to 32 MB) each time a large block is freed;
    Arrow's mimalloc pool keeps what it freed too. A chunked parse makes and
    frees thousands of blocks of tens of kilobytes (a column of one chunk), so
    the heap's resident set grew by tens of megabytes beyond what is held.
    Fixing the threshold at 16 KB (which also stops the raising) and giving
    Arrow the system allocator makes each such block its own mapping, unmapped
    when freed: the process's peak is what it holds at once, not what its steps
    freed before. Process-wide and for good; the values computed are the same
    either way.
    """
    if _LIBC is not None:
        _LIBC.mallopt(M_MMAP_THRESHOLD, PROMPT_MMAP_THRESHOLD)
    try:
        import pyarrow as pa
    except ImportError:
        return
    pa.set_memory_pool(pa.system_memory_pool())
