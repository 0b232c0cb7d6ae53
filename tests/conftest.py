import functools
import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest
import torch

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


def load_script(relative_path: str) -> ModuleType:
    """Import one of the repository's scripts (not a package module) by its path from the root."""
    path = Path(__file__).resolve().parents[1] / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def notebook_runner() -> ModuleType:
    """scripts/notebook_runner.py (course tooling: papermill is an extra, so it is not in the package), loaded once."""
    return load_script("scripts/notebook_runner.py")


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
