import functools
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image

CELL_TIMEOUT_S = int(os.environ.get("CA2SIS_CELL_TIMEOUT", "420"))  # per notebook cell, in smoke mode

# Tests measure behaviour, not speed; two threads match the CI machine and keep runs repeatable.
torch.set_num_threads(int(os.environ.get("CA2SIS_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def perturbed_tiny_ca2sis():
    """A tiny CA²-SIS with every parameter nudged by 0.05·randn: the zero-initialised transformer
    outputs are no longer the identity, so attention maps and edits are not trivial."""
    from ca2sis_lib.models import CA2SIS, CA2SISConfig

    torch.manual_seed(0)
    model = CA2SIS(CA2SISConfig.tiny()).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def bare_repository(tmp: Path, files: list[str] | None = None, texts: dict[str, str] | None = None) -> str:
    """A ``file://`` URL of a bare repository holding this working tree (tracked and new, not ignored files),
    or only ``files`` of it, with ``texts`` ({path: content}) written over them; for a first cell to clone as
    it clones GitHub on Colab."""
    import shutil
    import subprocess

    root = Path(__file__).resolve().parents[1]
    if files is None:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, check=True,
                                capture_output=True, text=True).stdout
        files = [f for f in listed.split("\0") if f and (root / f).is_file()]
    src = tmp / "src"
    for name in files:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        if (root / name).exists():
            shutil.copy2(root / name, src / name)
        else:
            (src / name).write_text("not a Python project\n")
    for name, text in (texts or {}).items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=src, check=True)
    subprocess.run([*git, "add", "-A"], cwd=src, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "snapshot"], cwd=src, check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(tmp / "repo.git")], check=True)
    return (tmp / "repo.git").as_uri()


def load_script(relative_path: str) -> ModuleType:
    """Import one of the repository's scripts (not a package module) by its path from the root."""
    path = Path(__file__).resolve().parents[1] / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look a class's module up there
    spec.loader.exec_module(module)
    return module


def error_outputs(executed: Path) -> list[str]:
    """Every error an executed notebook shows, whether or not it stopped the run.

    nbclient (and papermill on top of it) stops only when a cell's code raises; an exception raised
    while *displaying* a cell's result (a broken ``_repr_*_``, a widget that cannot render) is shown as
    an ``error`` output and the run goes on. Those outputs, and tracebacks written to stderr, are
    what this returns: ``["cell k: <first line>", …]``, empty when the notebook is clean.
    """
    import nbformat

    found = []
    code = [c for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code"]
    for k, cell in enumerate(code, 1):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append(f"cell {k}: {out.ename}: {out.evalue}"[:300])
            elif out.output_type == "stream" and out.name == "stderr" and "Traceback (most recent" in out.text:
                found.append(f"cell {k}: traceback on stderr: {out.text.strip().splitlines()[-1]}"[:300])
    return found


@functools.cache
def notebook_runner() -> ModuleType:
    """scripts/notebook_runner.py (course tooling: papermill is an extra, so it is not in the package), loaded once."""
    return load_script("scripts/notebook_runner.py")


def write_folder_dataset(split: Path, count: int = 10, seed: int = 0, classes: int = 12) -> Path:
    """``count`` image/label PNG pairs of 72x88 (so the 64x64 crop has room to move) and a
    dataset.json with left/right class pairs (so a flip also swaps ids), as a user would prepare them."""
    rng = np.random.default_rng(seed)
    (split / "images").mkdir(parents=True)
    (split / "labels").mkdir()
    colours = rng.integers(0, 256, (classes, 3))
    for i in range(count):
        label = np.zeros((72, 88), np.uint8)
        for k in range(1, classes):
            y, x, h, w = rng.integers(0, 60), rng.integers(0, 76), rng.integers(6, 24), rng.integers(6, 24)
            label[y:y + h, x:x + w] = k
        image = np.clip(colours[label] * 0.8 + rng.integers(0, 50, (72, 88, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(split / "images" / f"{i:03d}.png")
        Image.fromarray(label).save(split / "labels" / f"{i:03d}.png")
    (split.parent / "dataset.json").write_text(json.dumps({"num_classes": classes, "lr_pairs": [[3, 4], [5, 6]]}))
    return split


class SmokeRuns:
    """Notebooks executed in SMOKE mode, at most once per test session, laid out as `make run` lays them:
    ``<root>/<name>.ipynb`` (executed copy) and ``<root>/<name>/`` (figures, metrics.json). Each runs in
    its own working folder, so it must obtain its own data. The notebook test and the site test share them."""

    def __init__(self, root: Path, cell_timeout_s: int) -> None:
        self.root = root
        self.cell_timeout_s = cell_timeout_s
        self.failures: dict[str, BaseException] = {}

    def run(self, notebook: Path) -> Path:
        execute = notebook_runner().execute

        executed = self.root / notebook.name
        if notebook.name in self.failures:
            raise RuntimeError(f"{notebook.name} already failed in this session") from self.failures[notebook.name]
        if not executed.exists():
            work = self.root / "work" / notebook.stem
            work.mkdir(parents=True)
            try:
                # one progress line per cell: pytest captures it and shows it only when a test fails
                execute(notebook, str(executed.with_suffix(".partial.ipynb")),
                        parameters={"SMOKE": True, "OUTPUT_DIR": str(self.root / notebook.stem)},
                        cwd=work, timeout=self.cell_timeout_s)
            except BaseException as error:
                self.failures[notebook.name] = error
                raise
            executed.with_suffix(".partial.ipynb").rename(executed)
        return executed

    def run_all(self) -> Path:
        for notebook in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")):
            self.run(notebook)
        return self.root


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory) -> SmokeRuns:
    """CA2SIS_SMOKE_OUTPUTS=<folder of `make run SMOKE=1` or run_notebooks.py --smoke> reuses those executed
    copies (same layout) instead of executing the notebooks again, e.g. while working on the site."""
    reuse = os.environ.get("CA2SIS_SMOKE_OUTPUTS")
    root = Path(reuse) if reuse else tmp_path_factory.mktemp("smoke-notebooks")
    return SmokeRuns(root, CELL_TIMEOUT_S)
