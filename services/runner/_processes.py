"""Watching and stopping a started program: its output pipe, its process tree, its memory.

Private to ``services.runner``: ``cli_runner`` supervises a run with these.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import signal
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger(__name__)

MAX_LINE_BYTES = 64 * 1024

EOF = object()
CUT = object()


def pump(stream: Any, lines: queue.Queue[object], cap: int) -> None:
    """Read the child's output; keep the first ``cap`` bytes, drain the rest so it never blocks."""
    kept, cut = 0, False
    try:
        while chunk := stream.readline(MAX_LINE_BYTES):
            if cut:
                continue
            if kept + len(chunk) > cap:
                if kept < cap:
                    lines.put(chunk[: cap - kept])
                lines.put(CUT)
                kept, cut = cap, True
                continue
            kept += len(chunk)
            lines.put(chunk)
    except (OSError, ValueError):
        logger.debug("output pipe closed while reading", exc_info=True)
    finally:
        lines.put(EOF)


def has_exited(pid: int) -> bool:
    """True once the child has exited; it stays a zombie (its pid and group id reserved) until reaped."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send a signal to a process group, if it is still there."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        logger.warning("not allowed to signal process group %s", pgid)


def descendants(pid: int) -> list[psutil.Process]:
    """Return the live descendants of a process."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def signal_processes(processes: Sequence[psutil.Process], sig: signal.Signals) -> None:
    """Send a signal to each process that is still the one sampled."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)  # psutil checks that the pid was not reused


def high_water_rss(pid: int, tree: Sequence[psutil.Process]) -> int:
    """Peak resident memory (VmHWM, bytes) of a process and its live descendants.

    Sampled from /proc while the program runs: the rusage of a reaped child is no good here, since
    Linux starts a forked child's ru_maxrss at its parent's (the worker's) high-water mark.
    """
    total = 0
    for candidate in [pid, *(p.pid for p in tree)]:
        try:
            status = Path(f"/proc/{candidate}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        total += int(match[1]) * 1024 if match else 0
    return total


def signal_name(number: int) -> str:
    """Return the name of a signal number."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def list_files(directory: Path) -> tuple[Path, ...]:
    """Regular files only: a symlink planted by a program is never offered as a result."""
    found: list[Path] = []
    for root, _dirs, names in os.walk(directory, followlinks=False):
        for name in names:
            path = Path(root) / name
            if stat.S_ISREG(os.lstat(path).st_mode):
                found.append(path)
    return tuple(sorted(found))
