"""Process checks the tests share."""

from __future__ import annotations


def process_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(") ", 1)[-1][:1] not in ("Z", "X")
    except OSError:
        return False
