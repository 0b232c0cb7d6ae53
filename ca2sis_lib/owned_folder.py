"""A tool removes or replaces only what it made: the one rule for the output folders of this project.

A tool that replaces the contents of a folder (the course site of ``scripts/build_site.py``, the
student notebooks of ``scripts/make_student.py``) claims it first with :func:`claim`:

* a new or empty folder is claimed; a marker file, ``.made-by-ca2sis.json``, says which tool
  claimed it and, once the tool is done (:meth:`OwnedFolder.seal`), lists every file it wrote with
  its SHA-256;
* a folder whose marker names the same tool is claimed again, and :meth:`OwnedFolder.clear` removes
  exactly the files the marker lists, after checking that each is unchanged and that nothing else
  lies there: a file added or edited since (a student's work, someone's notes) stops it, named in
  the error, and nothing is removed;
* everything else is refused (:class:`NotOurFolder`, a ``ValueError`` naming the problem and the
  fix): a folder with other files in it, a repository (``.git`` or ``pyproject.toml``), the tool's
  input or a folder that contains it (:func:`check_location`, which tools that add files without
  removing any also call).

A *scratch* folder (:func:`scratch`: a notebook's example datasets, its demo runs) is emptied whole on
every run; its marker says so, and only the tool that made it may empty it.

A run that dies before :meth:`~OwnedFolder.seal` leaves its marker unsealed; the next claim counts
the files written since that run began as the tool's own. ``make clean`` deletes ``student/`` by the
same rule: ``python -m ca2sis_lib.owned_folder remove student --tool scripts/make_student.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MARKER = ".made-by-ca2sis.json"
REPOSITORY_SIGNS = (".git", "pyproject.toml")
DIRECTORY = "dir"  # the record's value for a folder (files record their SHA-256)
SHOWN = 6  # names listed in an error before "and N more"


class NotOurFolder(ValueError):
    """A tool was asked to write where it would remove or replace something it did not make."""


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def check_location(path: str | Path, tool: str, inputs: Iterable[str | Path] = ()) -> Path:
    """``path`` resolved, unless it is a repository's root folder, or is (or contains) one of ``inputs``."""
    path = Path(path).expanduser().resolve()
    signs = [name for name in REPOSITORY_SIGNS if (path / name).exists()]
    if signs:
        raise NotOurFolder(f"{path} is a repository (it has {' and '.join(signs)}): {tool} writes its output only "
                           "into a folder of its own. Fix: choose a new or empty folder (e.g. one under _build/).")
    for given in inputs:
        source = Path(given).expanduser().resolve()
        if source == path or source.is_relative_to(path):
            what = "is" if source == path else "contains"
            raise NotOurFolder(f"{path} {what} {tool}'s input {source}: writing its output there would replace what "
                               "it reads. Fix: choose an output folder outside the input (e.g. a new folder under "
                               "_build/).")
    if path.exists() and not path.is_dir():
        raise NotOurFolder(f"{path} is a file, not a folder: {tool} needs a folder for its output. Fix: choose a "
                           "new or empty folder.")
    return path


def _fingerprint(path: Path) -> str:
    """SHA-256 of a file's bytes, or of a symbolic link's target (links are never followed)."""
    digest = hashlib.sha256()
    if path.is_symlink():
        digest.update(b"link:" + os.fsencode(os.readlink(path)))
    else:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _entries(root: Path, under: Path | None = None) -> dict[str, Path]:
    """Relative name -> path of every file, link and folder below ``under`` (default ``root``), the
    marker left out, without following links."""
    start = under or root
    if not start.exists() and not start.is_symlink():
        return {}
    if start.is_symlink() or start.is_file():
        return {start.relative_to(root).as_posix(): start}
    found = {} if start == root else {start.relative_to(root).as_posix(): start}
    for folder, dirs, files in os.walk(start, followlinks=False):
        for name in dirs + files:
            path = Path(folder) / name
            if path != root / MARKER:
                found[path.relative_to(root).as_posix()] = path
    return found


def _kind(path: Path) -> str:
    return DIRECTORY if path.is_dir() and not path.is_symlink() else _fingerprint(path)


class OwnedFolder:
    """A folder that ``tool`` claimed (see the module docstring); use it as a context manager, which
    seals it on the way out, also when the tool fails."""

    def __init__(self, path: Path, tool: str, record: dict[str, str]) -> None:
        self.path, self.tool, self.record = path, tool, record
        self.claimed_at_ns = time.time_ns()
        self._write_marker(sealed=False)
        self._before = self._stats()

    def _stats(self) -> dict[str, tuple[int, int]]:
        return {name: (p.lstat().st_size, p.lstat().st_mtime_ns) for name, p in _entries(self.path).items()}

    def _write_marker(self, sealed: bool) -> None:
        marker = {"tool": self.tool, "sealed": sealed, "claimed_at_ns": self.claimed_at_ns,
                  "files": dict(sorted(self.record.items()))}
        (self.path / MARKER).write_text(json.dumps(marker, indent=1) + "\n")

    def clear(self, names: Iterable[str] | None = None) -> None:
        """Remove what this tool wrote here: everything, or the entries ``names`` (relative to the folder).
        Refuse, removing nothing, when one of them was not written by the tool or was changed since."""
        if names is None:
            found = _entries(self.path)
        else:
            found = {}
            for name in names:
                found.update(_entries(self.path, self.path / name))
        foreign = sorted(n for n in found if n not in self.record)
        changed = sorted(n for n, p in found.items() if n in self.record and _kind(p) != self.record[n])
        if foreign or changed:
            problems = ([f"not written by {self.tool}: {_listing(foreign)}"] if foreign else []) + (
                [f"changed since {self.tool} wrote them: {_listing(changed)}"] if changed else [])
            raise NotOurFolder(f"{self.path} holds files that are not {self.tool}'s to remove ({'; '.join(problems)}). "
                               f"Nothing was removed. Fix: move them out of {self.path} (or choose another output "
                               "folder), then run again.")
        for name in sorted(found, key=lambda n: n.count("/"), reverse=True):  # files before their folders
            if self.record.pop(name) == DIRECTORY:
                found[name].rmdir()
            else:
                found[name].unlink()
        self._write_marker(sealed=False)
        self._before = self._stats()

    def seal(self) -> None:
        """Record as this tool's every entry written since the claim (or the last clear); entries that
        were here before keep their old record, or stay unrecorded if they were not the tool's."""
        now = self._stats()
        for name, path in _entries(self.path).items():
            if name not in self._before or now[name] != self._before[name]:
                self.record[name] = _kind(path)
        self.record = {n: k for n, k in self.record.items() if n in now}
        self._write_marker(sealed=True)

    def __enter__(self) -> OwnedFolder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seal()


def _read_marker(path: Path, tool: str) -> dict[str, Any] | None:
    marker_path = path / MARKER
    if not marker_path.is_file():
        return None
    try:
        marker = json.loads(marker_path.read_text())
        if not isinstance(marker, dict) or not isinstance(marker.get("files"), dict):
            raise ValueError("not a record of files")
    except ValueError as error:
        raise NotOurFolder(f"{marker_path} is damaged ({error}), so what {tool} wrote there is unknown. Fix: check "
                           "the folder's contents, then delete it yourself, or choose another output folder.") from None
    return marker


def claim(path: str | Path, tool: str, inputs: Iterable[str | Path] = ()) -> OwnedFolder:
    """Claim ``path`` as ``tool``'s output folder: new, empty, or one it claimed before (see the module
    docstring); raise :class:`NotOurFolder` otherwise."""
    path = check_location(path, tool, inputs)
    path.mkdir(parents=True, exist_ok=True)
    marker = _read_marker(path, tool)
    present = _entries(path)
    if marker is None:
        if present:
            raise _not_made_by(tool, path, present)
        return OwnedFolder(path, tool, {})
    if marker.get("tool") != tool or marker.get("scratch"):
        raise _made_by_another(tool, path, marker)
    record = {str(k): str(v) for k, v in marker["files"].items()}
    if not marker.get("sealed", False):  # the last run died before sealing: what it wrote since its claim is its own
        since = int(marker.get("claimed_at_ns", time.time_ns()))
        for name, entry in present.items():
            if name not in record and entry.lstat().st_mtime_ns >= since:
                record[name] = _kind(entry)
    return OwnedFolder(path, tool, record)


def _not_made_by(tool: str, path: Path, present: dict[str, Path]) -> NotOurFolder:
    top = sorted({name.split("/", 1)[0] for name in present})
    return NotOurFolder(
        f"{path} is not empty and {tool} did not make it (there is no {MARKER} in it); it holds "
        f"{_listing(top)}. {tool} replaces the contents of its output folder, so it writes only into a new "
        "or empty folder or one it made before. Fix: choose another folder, or move those files away (an "
        "older version of the tool left no marker: delete its output yourself).")


def _made_by_another(tool: str, path: Path, marker: dict[str, Any]) -> NotOurFolder:
    kind = "scratch folder" if marker.get("scratch") else "output folder"
    return NotOurFolder(f"{path} is the {kind} of {marker.get('tool')!r}: {tool} writes only into a folder of its own. "
                        "Fix: choose another folder.")


def scratch(path: str | Path, tool: str) -> Path:
    """A folder that ``tool`` empties and fills again on every run (a notebook's example datasets and demo
    runs), and returns: a new or empty folder, or the scratch folder ``tool`` made here before (its marker
    says so), which is emptied whole. Anything else is refused as :func:`claim` refuses it, so a user's
    folder of the same name (a prepared dataset, say) is never touched."""
    path = check_location(path, tool)
    path.mkdir(parents=True, exist_ok=True)
    marker = _read_marker(path, tool)
    if marker is None:
        if _entries(path):
            raise _not_made_by(tool, path, _entries(path))
    elif marker.get("tool") != tool or not marker.get("scratch"):
        raise _made_by_another(tool, path, marker)
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.name != MARKER:
            entry.unlink()  # a file, or a link (removed, never followed)
    (path / MARKER).write_text(json.dumps({"tool": tool, "scratch": True, "files": {}}, indent=1) + "\n")
    return path


def remove(path: str | Path, tool: str) -> None:
    """Delete ``tool``'s output folder (``make clean``): what it recorded, unchanged, then the marker and
    the folder; refuse, removing nothing, when anything else is there. A missing folder is fine."""
    path = Path(path)
    if not path.exists():
        return
    folder = claim(path, tool)
    folder.clear()
    (folder.path / MARKER).unlink()
    folder.path.rmdir()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ca2sis_lib.owned_folder",
                                     description="Delete a tool's output folder, only if it holds nothing else.")
    parser.add_argument("command", choices=["remove"])
    parser.add_argument("folder")
    parser.add_argument("--tool", required=True, help="the tool that made it, e.g. scripts/make_student.py")
    args = parser.parse_args(argv)
    try:
        remove(args.folder, args.tool)
    except NotOurFolder as refusal:
        print(f"not removed: {refusal}", file=sys.stderr)
        return 1
    return 0


__all__ = ["MARKER", "NotOurFolder", "OwnedFolder", "check_location", "claim", "remove", "scratch"]

if __name__ == "__main__":
    sys.exit(main())
