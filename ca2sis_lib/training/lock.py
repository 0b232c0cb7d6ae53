"""One run per folder: ``out_dir/.lock``, held for the whole run and released at its end.

Two runs writing into one folder would interleave ``log.csv`` and overwrite each other's
checkpoint, so the second one stops at once and names the process that holds the folder.

The lock is an advisory ``flock`` on ``out_dir/.lock``, which also records who holds it (process
id, host, start time). The operating system drops a ``flock`` when its process dies, however it
dies, so a lock left by a killed run is recognised as stale (the file is there, nobody holds it)
and taken over with a note. On systems without ``fcntl`` (Windows) the file's existence is the
lock; a stale one must then be deleted by hand, as the error says.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


class RunLockedError(RuntimeError):
    """Another process holds the run folder."""


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "an unknown process (the lock file is empty)"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"process {holder.get('pid', '?')} on host {holder.get('host', '?')} (started {started})"


def _read_holder(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode(errors="replace")
    try:
        holder = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        holder = {"pid": "?", "host": text[:80]}
    return holder if isinstance(holder, dict) else {}


class RunLock:
    """The lock of one run folder; :meth:`acquire` it, :meth:`release` it (also a context manager)."""

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / LOCK_NAME
        self.fd: int | None = None
        self.acquired_at = 0.0  # time.time() when taken: temporary files older than this are leftovers
        self.taken_over: dict[str, Any] | None = None  # the holder of a stale lock that was taken over

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.acquired_at = time.time()
        if fcntl is None:
            self._acquire_exclusive_create()
        else:
            self._acquire_flock()
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": self.acquired_at,
              "command": " ".join(sys.argv)[:200]}
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        os.write(self.fd, json.dumps(me).encode())
        os.fsync(self.fd)
        if self.taken_over is not None:
            print(f"note: {self.path} was left by {_describe(self.taken_over)}, which no longer runs "
                  "(killed?); taking the folder over", file=sys.stderr)
        return self

    def _acquire_flock(self) -> None:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise RunLockedError(
                    f"{self.path.parent} is in use by another training run: {_describe(holder)}. Wait for it to "
                    "finish (or stop it), or choose another --out / out_dir. Two runs in one folder would "
                    "overwrite each other's checkpoint and log."
                ) from None
            try:  # the holder before us may have released (and deleted) the file in between: retry then
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        holder = _read_holder(fd)
        self.taken_over = holder or None  # a released lock is deleted: a file with a holder was left by a kill
        self.fd = fd

    def _acquire_exclusive_create(self) -> None:
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            with open(self.path, "rb") as handle:
                holder = _read_holder(handle.fileno())
            raise RunLockedError(
                f"{self.path.parent} is in use by another training run: {_describe(holder)}. If no run uses this "
                f"folder any more (a killed run), delete {self.path}; otherwise wait, or choose another --out."
            ) from None

    def release(self) -> None:
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)  # before unlocking: a waiting process then sees a new file
        os.close(self.fd)  # drops the flock
        self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
