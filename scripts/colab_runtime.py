"""An emulation of Colab's runtime, built from the package list Google publishes for it.

    python scripts/colab_runtime.py build              # the cached emulation venv; prints its path
    python scripts/colab_runtime.py refresh [--from DIR_OR_URL]   # update tests/colab_runtime/ (needs network)

Google publishes the packages of Colab's runtime in the public repository googlecolab/backend-info
(``pip-freeze.gpu.txt``, ``os-info-gpu.txt``). This repository keeps a copy with its source and
date in ``tests/colab_runtime/``; ``make test`` builds a virtual environment from it, once per
input (the venv is cached under ``~/.cache/ca2sis/`` by the hash of the list, the exclusions,
this script's recipe and the Python), and runs the notebooks and the widgets there
(tests/test_colab_runtime.py). What it installs:

* every pin of the list that can be installed off Colab, at Colab's version, without dependencies
  (the list is already complete: it is a ``pip freeze``); a pin PyPI has no wheel of is built from
  its source where that works here (pure-Python packages);
* the CUDA builds (``torch==2.11.0+cu128`` …) as the same versions from PyPI. PyPI's torch 2.11 is
  built for CUDA 13 and loads CUDA 13's runtime libraries when imported, even on a CPU; Colab's list
  has CUDA 12's. So the libraries it loads and Colab lacks (by name) are added from
  ``cpu-torch-runtime.txt``: they are loaded, never used, and change no pin of Colab's. And the
  CUDA 13 dependencies these builds *declare* (``cuda-toolkit==13.0.2``, …; Colab's CUDA 12 builds
  declare the CUDA 12 packages of Colab's list, at its versions) are removed from their installed
  metadata, so that pip, resolving the first cell's install, meets a torch whose declared
  dependencies are satisfied, as it does on Colab;
* not the pins in ``not-installable.txt``: packages Colab installs from a URL, a VCS or its own
  files, and those that neither have a wheel nor build here (they need Colab's system libraries).
  ``refresh`` finds them by trying, and writes the reason of each.

What no emulation has: Colab's own front end (it speaks the ipywidgets 7 protocol; the tests use
classic Notebook 6.5 with widgetsnbextension 3.6, the same pair, in Chromium), its GPU, its
``google.colab`` module (a stand-in is used) and its file system (``/content`` is a temporary folder).

The venv is built with ``uv`` (from the test environment) rather than pip: it installs the ~700
pinned wheels in parallel, about ten times faster than pip's one-by-one installs; pip still does
the installing that is under test (the notebooks' first cell runs pip, as Colab does).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "colab_runtime"
FREEZE, OS_INFO, SOURCE = "pip-freeze.gpu.txt", "os-info-gpu.txt", "SOURCE.md"
EXCLUDED, CPU_TORCH = "not-installable.txt", "cpu-torch-runtime.txt"  # written by `refresh`
BUILD_TIMEOUT_S = 300  # a pin whose source build takes longer is not installable here
UPSTREAM = "https://raw.githubusercontent.com/googlecolab/backend-info/main/"
RECIPE = "5"  # bump when the way the venv is built changes: the cache key includes it
CACHE = Path(os.environ.get("CA2SIS_CACHE", Path.home() / ".cache" / "ca2sis"))
LOCAL_BUILD = re.compile(r"\+cu\d+$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    name: str  # canonical
    version: str  # as Colab has it (may carry +cu128)
    direct: bool  # installed from a URL, a VCS or a local file on Colab

    @property
    def requirement(self) -> str:
        """What the emulation installs: Colab's version, a CUDA build as the same version from PyPI."""
        return f"{self.name}=={LOCAL_BUILD.sub('', self.version)}"


def read_pins(path: Path) -> list[Pin]:
    pins = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if " @ " in line:
            name, url = line.split(" @ ", 1)
            version = re.search(r"[-_](\d[\w.+!]*?)(?:-py|-cp|\.tar|\.zip|$)", url.rsplit("/", 1)[-1])
            pins.append(Pin(canonical(name), version[1] if version else "", True))
        else:
            name, version = line.split("==", 1)
            pins.append(Pin(canonical(name), version, False))
    return pins


def read_excluded(path: Path) -> dict[str, str]:
    """{canonical name: reason} from not-installable.txt (``name  # reason`` lines)."""
    excluded = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition("#")
            excluded[canonical(name.strip())] = reason.strip()
    return excluded


def colab_python_version(os_info: Path = DATA / OS_INFO) -> str:
    """'3.13' from the ``Python 3.13.x`` line Google's os-info file carries."""
    found = re.search(r"^Python (\d+\.\d+)", os_info.read_text(), re.M)
    if found is None:
        raise ValueError(f"{os_info}: no 'Python X.Y' line")
    return found[1]


def find_python(version: str) -> tuple[str, str]:
    """(interpreter, note): Colab's Python where this machine has it (PATH or pyenv), else this one, said so."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(map(str, pyenv.glob(f"{version}*/bin/python{version}")), reverse=True)
    candidates.append(shutil.which(f"python{version}"))  # last: pyenv's shim on PATH may refuse to run
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "--version"], capture_output=True).returncode == 0:
            return candidate, f"Python {version}, as Colab"
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    return sys.executable, (f"Python {here}: this machine has no Python {version} (Colab's); install it (e.g. "
                            f"`pyenv install {version}`) for a faithful emulation")


def requirements(data: Path = DATA) -> list[str]:
    excluded = read_excluded(data / EXCLUDED)
    return [p.requirement for p in read_pins(data / FREEZE) if not p.direct and p.name not in excluded]


def cpu_torch_runtime(data: Path = DATA) -> list[str]:
    return [line.split("#")[0].strip() for line in (data / CPU_TORCH).read_text().splitlines()
            if line.split("#")[0].strip()]


def python_version(python: str) -> str:
    return _run([python, "-c", "import platform; print(platform.python_version())"], "asking the Python").stdout.strip()


def cache_key(python: str, data: Path = DATA) -> str:
    digest = hashlib.sha256(RECIPE.encode())
    for name in (FREEZE, EXCLUDED, CPU_TORCH):
        digest.update((data / name).read_bytes())
    digest.update(python_version(python).encode())
    return digest.hexdigest()[:16]


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        raise RuntimeError("the emulation is built with uv: `pip install uv` (it is in the test extra)")
    return found


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n$ {' '.join(cmd[:6])} …\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return done


def installed_versions(python: str) -> dict[str, str]:
    """{canonical name: version} as ``python`` sees them (its importlib.metadata, first on the path wins)."""
    code = ("import json, importlib.metadata as m, re\nseen = {}\nfor d in m.distributions():\n"
            "    n = d.metadata['Name']\n    if n: seen.setdefault(re.sub(r'[-_.]+', '-', n).lower(), d.version)\n"
            "print(json.dumps(seen))")
    return json.loads(_run([python, "-c", code], "listing the installed packages").stdout)


def build(data: Path = DATA, cache: Path = CACHE) -> Path:
    """The emulation venv for ``data`` (built on first use, then reused); its path."""
    from filelock import FileLock

    python, note = find_python(colab_python_version(data / OS_INFO))
    target = cache / f"colab-runtime-{cache_key(python, data)}"
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "emulation.json").exists():  # written last: its presence means a complete build
            return target
        if target.exists():  # an earlier build of this very key that was interrupted: ours to remove
            shutil.rmtree(target)
        _run([python, "-m", "venv", str(target)], "creating the venv")
        reqs = target / "requirements.txt"
        reqs.write_text("\n".join(requirements(data) + cpu_torch_runtime(data)) + "\n")
        _run([_uv(), "pip", "install", "--python", str(target / "bin" / "python"), "--no-deps", "-r", str(reqs)],
             "installing Colab's packages")
        cuda_builds = [pin for pin in read_pins(data / FREEZE) if LOCAL_BUILD.search(pin.version)]
        edited = forget_cuda_requirements(target, cuda_builds)
        record = {"python": note, "packages": installed_versions(str(target / "bin" / "python")),
                  "cuda_requirements_removed": edited}
        (target / "emulation.json").write_text(json.dumps(record, indent=1, sort_keys=True))
    return target


CUDA_REQUIREMENT = re.compile(r"^Requires-Dist: (nvidia-|cuda-|triton)", re.I)


def forget_cuda_requirements(venv: Path, cuda_builds: list[Pin]) -> dict[str, list[str]]:
    """Remove the CUDA requirements PyPI's builds of ``cuda_builds`` declare from their installed METADATA
    (written as a new file: installed files may be hard links into uv's cache); what was removed, per package."""
    removed = {}
    for pin in cuda_builds:
        for metadata_file in venv.glob(f"lib/python*/site-packages/{pin.name.replace('-', '_')}-*.dist-info/METADATA"):
            lines = metadata_file.read_text().splitlines(keepends=True)
            dropped = [line.strip() for line in lines if CUDA_REQUIREMENT.match(line)]
            if dropped:
                metadata_file.unlink()
                metadata_file.write_text("".join(line for line in lines if not CUDA_REQUIREMENT.match(line)))
                removed[pin.name] = dropped
    return removed


def session_copy(emulation: Path, folder: Path) -> Path:
    """A copy of the emulation at ``folder`` for one test session, made of hard links (seconds, no extra disk).

    Colab's packages stay where Colab has them, in the environment's own site-packages (so pip's build
    isolation hides them, as on Colab), and whatever a test installs or removes changes the copy only:
    pip writes new files and unlinks old ones, never rewriting a file in place. The scripts in bin/ name
    their interpreter by path; they are rewritten (as new files) to name the copy's."""
    subprocess.run(["cp", "-al", str(emulation), str(folder)], check=True)
    for script in (folder / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            try:
                text = script.read_text()
            except UnicodeDecodeError:
                continue
            if str(emulation) in text:
                mode = script.stat().st_mode
                script.unlink()  # a new file: the linked one is the cached emulation's
                script.write_text(text.replace(str(emulation), str(folder)))
                script.chmod(mode)
    return folder


# -- refresh: a new copy of Google's list, and which of its pins cannot be installed here -----------------
def fetch(source: str, name: str) -> bytes:
    if re.match(r"^https?://", source):
        with urllib.request.urlopen(source.rstrip("/") + "/" + name, timeout=60) as response:
            return response.read()
    return (Path(source) / name).read_bytes()


def _uv_install(python: str, requirements: list[str], *options: str, timeout: int | None = None):
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as reqs:
        reqs.write("\n".join(requirements) + "\n")
        reqs.flush()
        return subprocess.run([_uv(), "pip", "install", "--python", python, "--no-deps", *options, "-r", reqs.name],
                              capture_output=True, text=True, timeout=timeout)


def build_error(stderr: str) -> str:
    """The most telling line of a failed source build: the last one naming an error, without uv's hints."""
    lines = [line.strip() for line in stderr.splitlines()
             if line.strip() and not line.strip().startswith(("hint:", "A full log"))]
    telling = [line for line in lines if re.search(r"error|not found|no such file|required", line, re.I)]
    return ((telling or lines or ["(no message)"])[-1]).removeprefix("cause:").strip()[:160]


def find_not_installable(pins: list[Pin], python: str) -> dict[str, str]:
    """The pins that cannot be installed here, with why: first those without a usable wheel (asking uv for a
    wheels-only plan, dropping each pin it refuses), then each of those is built from source alone and kept
    if that works within BUILD_TIMEOUT_S."""
    excluded = {p.name: "installed on Colab from a URL, a VCS or Colab's own files" for p in pins if p.direct}
    with tempfile.TemporaryDirectory() as tmp:
        _run([python, "-m", "venv", tmp], "creating a trial venv")
        trial = f"{tmp}/bin/python"
        for _ in range(len(pins)):
            left = [p.requirement for p in pins if p.name not in excluded]
            done = _uv_install(trial, left, "--dry-run", "--only-binary", ":all:")
            if done.returncode == 0:
                break
            refused = (re.search(r"Because ([A-Za-z0-9_.-]+)==\S+ (.+?) and you require", done.stderr)
                       or re.search(r"Wheels are required for `([A-Za-z0-9_.-]+)` because (.+?)$", done.stderr, re.M))
            if refused is None:
                raise RuntimeError(f"could not read uv's refusal:\n{done.stderr[-2000:]}")
            excluded[canonical(refused[1])] = f"PyPI: {refused[2]} (Python {python_version(python)}, manylinux x86_64)"
        by_name = {p.name: p for p in pins}
        for name, reason in sorted(excluded.items()):
            if name not in by_name or by_name[name].direct:
                continue
            try:
                built = _uv_install(trial, [by_name[name].requirement], timeout=BUILD_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                excluded[name] = f"{reason}; its source build takes over {BUILD_TIMEOUT_S} s"
                continue
            if built.returncode == 0:
                del excluded[name]
            else:
                excluded[name] = f"{reason}; its source build fails here: {build_error(built.stderr)}"
    return excluded


def find_cpu_torch_runtime(pins: list[Pin], version: str) -> list[str]:
    """What PyPI's builds of Colab's CUDA pins (torch …) need and Colab's list lacks by name: the CUDA
    runtime libraries they load at import (resolved by uv for Colab's Python on manylinux x86_64)."""
    cuda_builds = [p.requirement for p in pins if LOCAL_BUILD.search(p.version)]
    colab_names = {p.name for p in pins}
    with tempfile.NamedTemporaryFile("w", suffix=".in") as wanted:
        wanted.write("\n".join(cuda_builds) + "\n")
        wanted.flush()
        resolved = _run([_uv(), "pip", "compile", wanted.name, "--python-version", version, "--python-platform",
                         "x86_64-manylinux_2_28", "--no-header", "--no-annotate"], "resolving torch's needs").stdout
    needed = [line.strip() for line in resolved.splitlines() if "==" in line]
    return [req for req in needed if canonical(req.split("==")[0]) not in colab_names]


def refresh(source: str = UPSTREAM, data: Path = DATA, commit: str = "") -> None:
    data.mkdir(parents=True, exist_ok=True)
    for name in (FREEZE, OS_INFO):
        (data / name).write_bytes(fetch(source, name))
    python, note = find_python(colab_python_version(data / OS_INFO))
    pins = read_pins(data / FREEZE)
    runtime = find_cpu_torch_runtime(pins, colab_python_version(data / OS_INFO))
    (data / CPU_TORCH).write_text(
        f"# What PyPI's builds of Colab's CUDA pins load at import and Colab's list lacks by name (CUDA 13's runtime\n"
        f"# libraries for PyPI's torch, built for CUDA 13): loaded on a CPU, never used. `refresh` on {date.today()}.\n"
        + "".join(f"{req}\n" for req in runtime))
    excluded = find_not_installable(pins, python)
    lines = [f"# Pins of {FREEZE} the emulation does not install, with why (written by `colab_runtime.py refresh`"
             f" on {date.today()} with {note}).", *(f"{n}  # {r}" for n, r in sorted(excluded.items()))]
    (data / EXCLUDED).write_text("\n".join(lines) + "\n")
    if not (Path(source).is_dir() and Path(source).resolve() == data.resolve()):  # new copies: say where from
        (data / SOURCE).write_text(
            f"# Colab's runtime, as Google publishes it\n\n{FREEZE} and {OS_INFO} are copies of the files of the "
            f"same names in the public repository googlecolab/backend-info\n"
            f"(https://github.com/googlecolab/backend-info), copied from {source} on {date.today()}"
            f"{f' (commit {commit})' if commit else ''}.\nRefresh them with `python scripts/colab_runtime.py refresh"
            f" --commit SHA`; docs/colab_site_app.md says what to do when Colab changes.\n")
    print(f"{data}: {len(pins)} pins, {len(excluded)} not installable here, {len(runtime)} added for torch on a CPU")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build (or find) the cached emulation venv and print its path")
    fresh = sub.add_parser("refresh", help="copy Google's list again and find what cannot be installed")
    fresh.add_argument("--from", dest="source", default=UPSTREAM, help="a folder or URL holding the two files")
    fresh.add_argument("--commit", default="", help="the backend-info commit the files come from, for SOURCE.md")
    args = parser.parse_args(argv)
    if args.command == "build":
        print(build())
    else:
        refresh(args.source, commit=args.commit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
