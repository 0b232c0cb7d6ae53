"""Bad input gets the project's own one-line reason, naming the problem and the fix (issue 31):

* a malformed ``dataset.json`` (the folder dataset and the checker), ``--label-colors`` file or
  ``manifest.json`` — instead of a JSONDecodeError, a KeyError or a crash deep in the decoder;
* a notebook parameter of the wrong type (papermill may pass text: ``NUM_SAMPLES="eight"``), checked
  by ``ca2sis_lib.notebook.check_parameters`` in the cell after every notebook's parameters;
* ``run_notebooks.py --only`` with a typo (it ran nothing and exited 0);
* noise samples from a mapping network that was never trained (a missing ``_mapping.pt``, a
  reconstruction-stage checkpoint): a warning that says so, not random faces without a word.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import papermill
import pytest
import torch
from conftest import CELL_TIMEOUT_S

from ca2sis_lib.data import preflight
from ca2sis_lib.data.common import save_pair, write_dataset_info
from ca2sis_lib.data.folder import SegmentationFolder
from ca2sis_lib.data.toy import toy_batch
from ca2sis_lib.editing import generate_from_noise
from ca2sis_lib.loading import load_model
from ca2sis_lib.models import CA2SIS, CA2SISConfig
from ca2sis_lib.notebook import check_parameters
from ca2sis_lib.shipped import SHIPPED_DIR, load_shipped_file

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _dataset(tmp_path: Path) -> Path:
    """A dataset root with one train pair of two classes."""
    root = tmp_path / "dataset"
    save_pair(root / "train", "a", np.zeros((8, 8, 3), np.uint8), np.eye(8, dtype=np.int64))
    return root


@pytest.mark.parametrize("text, reason", [
    ("{not json", "is not valid JSON (Expecting property name"),
    ('["num_classes", 2]', "must hold a JSON object"),
    ('{"num_classes": "2"}', "num_classes is '2', not a positive integer"),
    ('{"num_classes": 2, "class_names": ["skin"]}', "1 class_names for num_classes=2"),
    ('{"num_classes": 2, "palette": [[0, 0, 0]]}', "palette has 1 colours for 2 classes"),
    ('{"num_classes": 2, "palette": [[0, 0, 0], [300, 0, 0]]}', "palette: colour 1 is [300, 0, 0]"),
    ('{"num_classes": 2, "ignore_index": "void"}', "ignore_index is 'void'"),
    ('{"num_classes": 2, "lr_pairs": [[0]]}', "lr_pairs must be a list of [left class id, right class id] pairs"),
])
def test_a_malformed_dataset_json_is_named_with_the_fix(tmp_path, capsys, text, reason):
    root = _dataset(tmp_path)
    (root / "dataset.json").write_text(text)
    with pytest.raises(ValueError, match=re.escape(reason) + ".*Fix: correct .*dataset.json"):
        SegmentationFolder(root, "train")
    assert preflight.main([str(root)]) == 1
    err = capsys.readouterr().err
    assert reason in err and "dataset.json" in err and "Fix:" in err and "Traceback" not in err


def test_a_well_formed_dataset_json_is_read_as_before(tmp_path):
    root = _dataset(tmp_path)
    write_dataset_info(root, "two", ["skin", "hair"], [(0, 0, 0), (255, 0, 0)], ignore_index=255, lr_pairs=[[0, 1]])
    data = SegmentationFolder(root, "train")
    assert (data.num_classes, data.class_names, data.ignore_index) == (2, ("skin", "hair"), 255)


@pytest.mark.parametrize("text, reason", [
    ("[[0, 0, 0], [255, 0]]", "colour 1 is [255, 0]; each colour is [R, G, B] with integers 0-255"),
    ("[[0, 0, 0], [256, 0, 0]]", "colour 1 is [256, 0, 0]"),
    ("[[0, 0, 0],", "is not valid JSON"),
    ('{"skin": [0, 0, 0]}', "must be a list of colours [R, G, B], one per class; got dict"),
    ("[[0, 0, 0]]", "has 1 colours for 2 classes"),
    ("[[9, 9, 9], [9, 9, 9]]", "gives the colour [9, 9, 9] to classes [0, 1]"),
    (None, "no such file"),
])
def test_a_malformed_label_colours_file_is_named(tmp_path, capsys, text, reason):
    root = _dataset(tmp_path)
    colours = tmp_path / "colours.json"
    if text is not None:
        colours.write_text(text)
    assert preflight.main([str(root), "--num-classes", "2", "--label-colors", str(colours)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("--label-colors: ") and reason in err and "Traceback" not in err, err


@pytest.mark.parametrize("text, reason", [
    ("{", "is not valid JSON"),
    ('{"ca2sis_tiny_toy": {"file": "ca2sis_tiny_toy.pt"}}', "is damaged: it must map each model's name to"),
    ("[]", "is damaged"),
])
def test_a_damaged_manifest_says_how_to_restore_it(tmp_path, text, reason):
    shutil.copy(SHIPPED_DIR / "ca2sis_tiny_toy.pt", tmp_path / "ca2sis_tiny_toy.pt")
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(ValueError, match=re.escape(reason) + ".*restore it"):
        load_shipped_file(tmp_path / "ca2sis_tiny_toy.pt")


# -- notebook parameters -------------------------------------------------------------------------------
DECLARED = {"SMOKE": bool, "NUM_SAMPLES": int, "LR": float, "DATA": str}


def test_a_parameter_of_the_wrong_type_is_named_with_its_declared_type():
    valid = {"SMOKE": False, "NUM_SAMPLES": 8, "LR": 1, "DATA": "toy"}  # an int is a float, as in type hints
    check_parameters({"__annotations__": DECLARED, **valid})
    with pytest.raises(TypeError, match=r"SMOKE=1 is int, not bool; NUM_SAMPLES='eight' is str, not int.*-p NAME"):
        check_parameters({"__annotations__": DECLARED, **valid, "NUM_SAMPLES": "eight", "SMOKE": 1})
    with pytest.raises(TypeError, match="NUM_SAMPLES=True is bool, not int"):
        check_parameters({"__annotations__": DECLARED, **valid, "NUM_SAMPLES": True})
    with pytest.raises(RuntimeError, match="after the notebook's parameters cell"):
        check_parameters({"NUM_SAMPLES": 8})


def test_every_notebook_checks_its_parameters_first():
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        at = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
        code = [line for line in cells[at + 1].source.splitlines()
                if line.strip() and not line.startswith(("import ", "from ", " ", ")"))]
        assert code[0].startswith("check_parameters(globals())"), f"{path.name}: {code[:1]}"


@pytest.mark.notebook
def test_notebook_05_refuses_a_number_given_as_text(tmp_path):
    """Papermill passes NUM_SAMPLES="eight" as it is; the notebook stops at once with the reason."""
    nb = nbformat.read(ROOT / "notebooks" / "05_style_and_shape_editing.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells = nb.cells[at:at + 2]  # the parameters and the cell that checks them
    nbformat.write(nb, tmp_path / "05_head.ipynb")
    with pytest.raises(papermill.PapermillExecutionError, match=r"NUM_SAMPLES='eight' is str, not int"):
        papermill.execute_notebook(str(tmp_path / "05_head.ipynb"), str(tmp_path / "out.ipynb"), cwd=str(tmp_path),
                                   parameters={"NUM_SAMPLES": "eight", "OUTPUT_DIR": str(tmp_path / "o")},
                                   kernel_name="python3", progress_bar=False, execution_timeout=CELL_TIMEOUT_S)


def test_run_notebooks_only_with_a_typo_runs_nothing_and_names_the_notebooks(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_notebooks.py"), "--out", str(tmp_path / "o"),
                           "--only", "5_style", "O3"], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "--only 5_style O3 matches no notebook" in done.stderr, done.stderr
    assert all(p.stem in done.stderr for p in NOTEBOOKS) and not (tmp_path / "o").exists()


# -- a mapping network that was never trained ------------------------------------------------------------
def _random_mapping_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "RANDOM mapping network" in str(w.message)]


def test_noise_samples_from_a_missing_mapping_file_say_so(tmp_path, recwarn):
    labels = toy_batch(1, "test")[1]
    generate_from_noise(load_model("ca2sis_tiny_toy"), labels, num_samples=1)  # shipped with its mapping network
    assert not _random_mapping_warnings(recwarn)
    shutil.copy(SHIPPED_DIR / "ca2sis_tiny_toy.pt", tmp_path / "ca2sis_tiny_toy.pt")  # without its _mapping.pt
    with pytest.warns(UserWarning, match="RANDOM mapping network.*ca2sis_tiny_toy_mapping.pt is not beside it"):
        generate_from_noise(load_model(str(tmp_path / "ca2sis_tiny_toy.pt")), labels, num_samples=1)


@pytest.mark.parametrize("stage", ["reconstruction", "mapping"])
def test_noise_samples_from_a_reconstruction_checkpoint_say_so(tmp_path, recwarn, stage):
    model = CA2SIS(CA2SISConfig.tiny())
    state = {"family": "ca2sis", "step": 10, "model_config": model.config.to_dict(), "generator": model.state_dict(),
             "ema": None, "train_config": {"stage": stage}}
    torch.save(state, tmp_path / "checkpoint.pt")
    generate_from_noise(load_model(str(tmp_path / "checkpoint.pt")), toy_batch(1, "test")[1], num_samples=1)
    said = _random_mapping_warnings(recwarn)
    assert (len(said) == 1 and "reconstruction-stage checkpoint" in said[0]) if stage == "reconstruction" else not said

