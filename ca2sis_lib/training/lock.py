"""One run per folder: ``out_dir/.lock``, held for the whole run and released at its end.

Two runs writing into one folder would interleave ``log.csv`` and overwrite each other's
checkpoint, so the second one stops at once and names the run that holds the folder.

The lock is ``filelock``'s (an OS lock: ``flock`` on Unix, ``msvcrt.locking`` on Windows), which
the operating system drops when its process dies, however it dies (``kill -9`` included). Beside
it, ``out_dir/.lock.holder`` names the holder (host, process id, start time, command) for the
message a refused run prints. A holder file found by a run that did get the lock was left by a
killed run: it is taken over with a note. Both files are removed on release.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

LOCK_NAME = ".lock"
HOLDER_NAME = ".lock.holder"


class RunLockedError(RuntimeError):
    """Another process holds the run folder."""


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "an unknown process (it has not written its name yet, or its holder file is unreadable)"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    command = f", command: {holder['command']}" if holder.get("command") else ""
    return f"process {holder.get('pid', '?')} on host {holder.get('host', '?')} (started {started}{command})"


def _read_holder(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text(errors="replace"))
    except (OSError, json.JSONDecodeError):
        return None
    return holder if isinstance(holder, dict) else None


class RunLock:
    """The lock of one run folder; :meth:`acquire` it, :meth:`release` it (also a context manager)."""

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / LOCK_NAME
        self.holder_path = Path(out_dir) / HOLDER_NAME
        self.lock = FileLock(self.path, timeout=0)  # never wait: a second run stops at once
        self.acquired_at = 0.0  # time.time() when taken: temporary files older than this are leftovers
        self.taken_over: dict[str, Any] | None = None  # the holder of a stale lock that was taken over

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.lock.acquire()
        except Timeout:
            raise RunLockedError(
                f"{self.path.parent} is in use by another training run: {_describe(_read_holder(self.holder_path))}. "
                "Wait for it to finish (or stop it), or choose another --out / out_dir. Two runs in one folder would "
                "overwrite each other's checkpoint and log."
            ) from None
        self.acquired_at = time.time()
        self.taken_over = _read_holder(self.holder_path)  # a released lock removes it: one found was left by a kill
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": self.acquired_at,
              "command": " ".join(sys.argv)[:200]}
        partial = self.holder_path.with_name(f"{HOLDER_NAME}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(me))
        os.replace(partial, self.holder_path)  # whole or absent: a refused run never reads half a name
        if self.taken_over is not None:
            print(f"note: {self.path} was left by {_describe(self.taken_over)}, which no longer runs "
                  "(killed?); taking the folder over", file=sys.stderr)
        return self

    def release(self) -> None:
        if not self.lock.is_locked:
            return
        self.holder_path.unlink(missing_ok=True)
        try:  # before unlocking: a process that opened this file sees it unlinked and retries on a new one
            self.path.unlink(missing_ok=True)
        except PermissionError:  # Windows removes no open file: filelock's release may, or it stays, empty
            pass
        self.lock.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
