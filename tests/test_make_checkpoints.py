"""`make checkpoints` refuses to finish a run folder that another recipe started."""

from pathlib import Path

import pytest
import yaml
from conftest import load_script

from ca2sis_lib.training.config import resolve_config


def write_run(run: Path, **changes) -> None:
    run.mkdir()
    train = resolve_config("toy-ca2sis", overrides={"out_dir": str(run), "progress": False, **changes}).to_dict()
    (run / "config.yaml").write_text(yaml.safe_dump({"train": train}))
    (run / "checkpoint.pt").write_bytes(b"")


def test_a_run_of_an_older_recipe_is_refused_with_the_changed_keys(tmp_path):
    check = load_script("scripts/make_checkpoints.py").check_run_matches_preset
    write_run(tmp_path / "old", lambda_attn=1.0)
    expected = r"lambda_attn: checkpoint has 1\.0, this run has 5\.0\).*move that folder aside"
    with pytest.raises(SystemExit, match=expected):
        check(tmp_path / "old", "toy-ca2sis")


def test_a_run_of_the_same_recipe_or_without_checkpoint_resumes(tmp_path):
    check = load_script("scripts/make_checkpoints.py").check_run_matches_preset
    write_run(tmp_path / "same", max_steps_this_run=100)  # a session budget is not part of the recipe
    (tmp_path / "same").rename(tmp_path / "moved")  # nor where the folder lies
    check(tmp_path / "moved", "toy-ca2sis")
    check(tmp_path / "missing", "toy-ca2sis")
