"""The in-browser explorer (site/explorer/) as a folder of static files; `make book` puts it at <site>/explorer/.

    python scripts/build_explorer.py --out _build/explorer     # the explorer alone (what its browser test builds)

The folder gets the page (index.html, explorer.css, js/), the ONNX graphs with their manifest
(site/explorer/models/, refused when they no longer match the shipped weights: re-export them with
``python -m ca2sis_lib.explorer.export --out site/explorer/models``), samples.json (toy faces, written
here from the toy generator), and the three onnxruntime-web files the page loads (its ES module,
the WebAssembly binary and its loader) with a note of its version and licence, so that nothing is fetched from
another host when the page runs.

onnxruntime-web comes from npm, pinned with its integrity hashes by site/explorer/package-lock.json.
``npm ci`` runs once per lock file and its node_modules are kept outside the repository, in
``$CA2SIS_NPM_CACHE`` or ~/.cache/ca2sis/explorer-npm/<hash of the lock>/ (a folder per lock: delete
them freely): the 15 MB WebAssembly binary stays out of git, updating it is a one-line change to
package.json, and the package's own files never mix with the repository's. That first build needs
npm and the npm registry.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ca2sis_lib.owned_folder import NotOurFolder, claim

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "site" / "explorer"
MODELS = SOURCE / "models"
CACHE_HOME = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
NPM_CACHE = Path(os.environ.get("CA2SIS_NPM_CACHE") or CACHE_HOME / "ca2sis" / "explorer-npm")
PAGE_FILES = ("index.html", "explorer.css", "js")
ORT_PACKAGE = "onnxruntime-web"
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


def lock_key() -> str:
    """The hash of package.json and package-lock.json: names one set of installed packages."""
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((SOURCE / name).read_bytes())
    return digest.hexdigest()[:16]


def node_modules(cache: Path = NPM_CACHE) -> Path:
    """``npm ci`` of site/explorer's lock file, once per lock: the path of its node_modules."""
    folder = cache / lock_key()
    if (folder / "node_modules" / ORT_PACKAGE / "package.json").exists():
        return folder / "node_modules"
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("the explorer needs npm once, to fetch onnxruntime-web (pinned by site/explorer/"
                         "package-lock.json): install Node.js with npm (apt-get install npm, or nodejs.org), then "
                         "build again")
    partial = cache / f"{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)  # ours: named with this process's id
    partial.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(SOURCE / name, partial / name)
    done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], cwd=partial,
                          capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise SystemExit(f"npm ci failed for the explorer (it needs the npm registry once; later builds reuse "
                         f"{cache}):\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    try:
        partial.rename(folder)
    except OSError:  # another build finished first: use its copy
        shutil.rmtree(partial, ignore_errors=True)
    return folder / "node_modules"


def build_explorer(out: Path, cache: Path = NPM_CACHE) -> Path:
    """Write the explorer into ``out`` (made or replaced); returns ``out``."""
    from ca2sis_lib.explorer.export import check_current

    try:
        check_current(MODELS)
    except RuntimeError as error:
        raise SystemExit(str(error)) from None
    modules = node_modules(cache)
    with claim(out, "scripts/build_explorer.py", inputs=(ROOT,)) as folder:  # ca2sis_lib/owned_folder.py's rule
        folder.clear()
        _write(folder.path, modules)
    return folder.path


def _write(out: Path, modules: Path) -> None:
    from ca2sis_lib.explorer.export import MANIFEST
    from ca2sis_lib.explorer.samples import write_samples

    for name in PAGE_FILES:
        source = SOURCE / name
        if source.is_dir():
            shutil.copytree(source, out / name)
        else:
            shutil.copy(source, out / name)
    (out / "models").mkdir()
    for path in [MODELS / MANIFEST, *sorted(MODELS.glob("*.onnx"))]:
        shutil.copy(path, out / "models" / path.name)
    shutil.copy(ROOT / "site" / "_static" / "favicon.svg", out / "favicon.svg")
    write_samples(out / "samples.json")
    package = modules / ORT_PACKAGE
    (out / "ort").mkdir()
    for name in ORT_FILES:
        shutil.copy(package / "dist" / name, out / "ort" / name)
    meta = json.loads((package / "package.json").read_text())
    (out / "ort" / "ABOUT.txt").write_text(
        f"{meta['name']} {meta['version']} ({meta.get('homepage', 'https://onnxruntime.ai')}), licence: "
        f"{meta['license']}, Copyright (c) Microsoft Corporation (the notice heads ort.wasm.min.mjs). Copied from "
        "npm by scripts/build_explorer.py, pinned by site/explorer/package-lock.json.\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="_build/explorer", help="the folder to write (replaced if this script "
                        "made it)")
    args = parser.parse_args(argv)
    try:
        out = build_explorer(Path(args.out))
    except NotOurFolder as refusal:  # one line, no traceback: nothing was written or removed
        print(f"build_explorer.py: {refusal}", file=sys.stderr)
        return 2
    print(f"explorer: {out / 'index.html'} (serve the folder, e.g. python -m http.server -d {out.parent})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
