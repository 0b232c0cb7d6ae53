"""Notebook harness: every notebooks/*.ipynb runs top to bottom under papermill with SMOKE=True.

Each notebook runs in its own temporary working directory (so it must obtain its own data), with
a per-cell timeout, and writes the numbers it found to ``OUTPUT_DIR/metrics.json``; the checks
below assert on those numbers, never on pixels. The conventions of the brief are checked first,
without executing anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = int(os.environ.get("CA2SIS_CELL_TIMEOUT", "420"))


def smoke_parameters(output_dir: Path) -> dict:
    return {"SMOKE": True, "OUTPUT_DIR": str(output_dir)}


# What each notebook must have found (read from its metrics.json). Every notebook needs an entry.
def _check_00(m: dict) -> None:
    assert m["paper_parameters"] == 77_229_243
    assert m["tiny_generator_parameters_without_mapping"] <= 5_000_000
    assert abs(m["tiny_initial_attn_loss"] - 0.6931) < 0.01
    assert m["paper_style_shape"] == [1, 19, 1280]
    assert len(m["paper_attention_shapes"]) == 5


CHECKS = {"00_anatomy_of_ca2sis": _check_00}


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_conventions(path: Path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "notebook has no code cells"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), (
        f"{path.name} has committed outputs: strip them (make strip)"
    )
    first = code[0].source
    assert "google.colab" in first and "pip" in first and "environment_report" in first, (
        "the first code cell must detect Colab, install the package there and print the environment"
    )
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged 'parameters'"
    declared = papermill.inspect_notebook(str(path))
    for name in smoke_parameters(Path("x")):
        assert name in declared, f"parameters cell does not declare {name}"
        assert declared[name]["help"], f"parameter {name} has no explanatory comment"
    assert declared["SMOKE"]["default"] == "False" and declared["SMOKE"]["inferred_type_name"] == "bool"
    assert path.stem in CHECKS, f"add a metrics check for {path.stem} to tests/test_notebooks.py"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_mode(path: Path, tmp_path: Path):
    out_dir = tmp_path / "outputs"
    executed = tmp_path / path.name
    papermill.execute_notebook(
        str(path),
        str(executed),
        parameters=smoke_parameters(out_dir),
        cwd=str(tmp_path),
        kernel_name="python3",
        execution_timeout=CELL_TIMEOUT_S,
        progress_bar=False,
    )
    metrics = json.loads((out_dir / "metrics.json").read_text())
    CHECKS[path.stem](metrics)
