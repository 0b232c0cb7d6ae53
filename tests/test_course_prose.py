"""Prose that agrees with its numbers: what notebooks 03 and 04, the README and docs/performance.md say,
checked against the measurement or the executed notebook it quotes.

* notebook 03's time per step and per notebook, the README's and docs/performance.md's: one measurement;
* the README's share of `make run` that notebooks 02 and 03 take, and the install sizes it quotes;
* notebook 03's starting value of g_attn (λ_att·ln 2 times the class-balance factor), from a short run of
  the same preset and seed;
* notebook 04's Question 04.1 and its reading of SEAN's blend scalars, from the executed notebook's metrics.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PERFORMANCE = (ROOT / "docs" / "performance.md").read_text()
NOTEBOOK_03 = ROOT / "notebooks" / "03_training.ipynb"
NOTEBOOK_04 = ROOT / "notebooks" / "04_attention_inspection.ipynb"


def cell_source(notebook: Path, cell_id: str) -> str:
    return next(c.source for c in nbformat.read(notebook, as_version=4).cells if c.get("id") == cell_id)


def idle_run_seconds() -> dict[str, int]:
    """docs/performance.md, `make run` on an idle machine: the first measurement's seconds per notebook."""
    section = PERFORMANCE[PERFORMANCE.index("## `make run` on an idle machine"):]
    return {m[1]: int(m[2]) for m in re.finditer(r"^\| (\d\d_\w+|all six) \| (\d+)", section, re.M)}


def test_notebook_03_the_readme_and_the_performance_page_quote_one_measurement():
    seconds = idle_run_seconds()["03_training"]
    row = re.search(r"^\| 03_training \| \d+ \(its (\d+) training steps: ([\d.]+) s each\)", PERFORMANCE, re.M)
    steps, per_step = int(row[1]), row[2]
    intro = cell_source(NOTEBOOK_03, "936fefa4")
    assert f"it took {per_step} s per step" in intro and f"{seconds} s for the whole\nnotebook" in intro
    assert f"about {round(steps * float(per_step) / 60)} minutes of training" in intro
    parameters = cell_source(NOTEBOOK_03, "dbecb5f2")
    assert f"STEPS: int = {steps}" in parameters
    assert f"(about {round(steps * float(per_step) / 60)} min on two idle CPU cores)" in parameters
    minutes = round(seconds / 60)
    assert re.search(rf"^\| `03_training` \|.*\| {minutes} min \|$", README, re.M), "README's table of notebooks"
    assert f"**Give as homework:** `03` (about {minutes} minutes on two cores" in README


def test_the_readme_says_how_much_of_make_run_notebooks_02_and_03_take():
    seconds = idle_run_seconds()
    both = seconds["02_spade_vs_cross_attention"] + seconds["03_training"]
    share = round(100 * both / seconds["all six"])
    assert f"Notebooks `02` and `03` take {both} of\nthe {seconds['all six']} s" in README
    assert f"({share} %;" in README


def test_the_readme_quotes_the_measured_install_size():
    table = (ROOT / "benchmarks" / "results" / "install_size.md").read_text()
    rows = {m[1]: (m[2], m[3], m[4]) for m in re.finditer(r"^\| (\w+)[^|]* \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$",
                                                           table, re.M)}
    run_total, cuda, run_rest = rows["run"]
    assert f"{cuda} GiB of the {run_total} GiB that `make run` installs ({rows['test'][0]} GiB for `make test`" in (
        README.replace("\n", " "))
    assert f"so {run_rest} GiB, the rest with PyPI's larger torch, is an upper bound" in README.replace("\n", " ")


def make_dry_run(tmp_path: Path, *args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(["make", "-n", *args, f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_each_make_command_installs_only_the_extras_it_needs(tmp_path: Path):
    run = make_dry_run(tmp_path, "run")
    assert "-e '.[notebooks]'" in run and "download.pytorch.org" not in run  # PyPI's torch by default
    assert "-e '.[notebooks,course]'" in make_dry_run(tmp_path, "book")
    assert "-e '.[notebooks,course]'" in make_dry_run(tmp_path, "student")
    assert "-e '.[notebooks,course,test]'" in make_dry_run(tmp_path, "test")
    cpu = make_dry_run(tmp_path, "run", "TORCH_INDEX=cpu").splitlines()
    torch_line = next(i for i, line in enumerate(cpu) if "pip install torch torchvision" in line)
    assert cpu[torch_line].endswith("--index-url https://download.pytorch.org/whl/cpu")
    assert torch_line < next(i for i, line in enumerate(cpu) if "-e '.[notebooks]'" in line)  # torch first: kept


@pytest.mark.slow
def test_notebook_03_says_where_g_attn_starts(tmp_path: Path):
    """The default run (toy-ca2sis, seed 0): its first ten logged steps, as the notebook's prose quotes them."""
    from ca2sis_lib.train import train
    from ca2sis_lib.training.config import resolve_config
    from ca2sis_lib.viz import read_training_log

    prose = cell_source(NOTEBOOK_03, "4f97a3ff")
    quoted = re.search(r"λ_att = (\d+) it is ([\d.]+) at step 1\n\(= \1 × 0\.69 × ([\d.]+)\), and ([\d.]+) at step 10",
                       prose)
    assert quoted, "the sentence on g_attn's start changed: update this test"
    cfg = resolve_config("toy-ca2sis", overrides={"out_dir": str(tmp_path), "steps": 10, "decay_start": None,
                                                  "log_every": 1, "progress": False})
    train(cfg)
    g_attn = read_training_log(tmp_path / "log.csv").set_index("step")["g_attn"]
    assert cfg.lambda_attn == int(quoted[1]) and cfg.attn_pos_weight_max > 0  # the class-balanced preset
    assert f"{g_attn[1]:.2f}" == quoted[2] and f"{g_attn[10]:.2f}" == quoted[4]
    factor = g_attn[1] / (cfg.lambda_attn * math.log(2))
    assert f"{factor:.2f}" == quoted[3] and 1 < factor < 2  # Question 03.2: between ln 2 and 2 ln 2 per unit λ


def executed_metrics(smoke_runs, notebook: Path) -> dict:
    smoke_runs.run(notebook)
    return json.loads((smoke_runs.root / notebook.stem / "metrics.json").read_text())


@pytest.mark.notebook
def test_notebook_03_prints_where_g_attn_started(smoke_runs):
    m = executed_metrics(smoke_runs, NOTEBOOK_03)
    factor = m["g_attn_first"] / (m["lambda_attn"] * math.log(2))
    assert 0.9 < factor < 2, factor  # λ_att·ln 2 at zero logits, at most twice that when class-balanced


@pytest.mark.notebook
def test_question_04_1_and_the_sean_blend_read_what_the_notebook_measures(smoke_runs):
    """Sample 0 and the shipped models are the same in the quick and the full run, so are these numbers."""
    m = executed_metrics(smoke_runs, NOTEBOOK_04)
    split = m["finest_layer_split"]
    question = cell_source(NOTEBOOK_04, "q-04-auroc_iou").replace("\n", " ")
    quoted = re.search(r"the (\w+) pixels of sample 0 give on average ([\d.]+) of their attention to \1 and "
                       r"([\d.]+) to the (\w+)\. Yet at 64² the \4's AUROC rounds to 1\.00", question)
    assert quoted, "Question 04.1 changed: update this test"
    assert (split["class"], split["rival"]) == (quoted[1], quoted[4])
    assert (f"{split['own_share']:.2f}", f"{split['rival_share']:.2f}") == (quoted[2], quoted[3])
    assert split["rival_auroc"] >= 0.995 and split["rival_ap"] < 0.95  # ranks right, yet mixes
    reading = cell_source(NOTEBOOK_04, "sean-blend-reading").replace("\n", " ")
    quoted = re.search(r"σ\(a_γ\) = ([\d.]+) and σ\(a_β\) = ([\d.]+) at the layer shown, and no SEANNorm layer's "
                       r"share is more than ([\d.]+) from 0\.5", reading)
    assert quoted, "the reading of SEAN's blend changed: update this test"
    assert [f"{v:.2f}" for v in m["sean_blend_shown"]] == [quoted[1], quoted[2]]
    assert m["sean_blend_farthest_from_half"] <= float(quoted[3])
