"""Every training command the project documents (``--help``, README.md, docs/*.md, the notebooks'
text) parses and validates exactly as written, and runs: one step each, in a folder holding the data
it names. ``--set steps=500`` was refused with the toy preset (its decay_start=1300 did not fit), and
of several ``--set`` flags only the last one counted."""

import json
import re
import shlex
from pathlib import Path

import pytest
from conftest import write_folder_dataset

from ca2sis_lib import train as train_module
from ca2sis_lib.checkpoint_io import load_checkpoint
from ca2sis_lib.training.config import PRESETS, parse_overrides, resolve_config

ROOT = Path(__file__).resolve().parents[1]
# python -m ca2sis_lib.train ... or torchrun [launcher options] -m ca2sis_lib.train ... (not the usage line of
# --help), up to a backtick, a comment or the line end; a trailing backslash continues it on the next line
COMMAND = re.compile(r"(?:python -m |torchrun (?:--\S+ )*-m )ca2sis_lib\.train(?![.\w]| \[)(?:[^`\n#\\]|\\\n)*")
PLACEHOLDERS = {"DIR": "data/celebamask256/train", "<folder>": "data/celebamask256/train", "<dir>": "runs/placeholder"}
# to make each run one small step: settings of cost only (the documented ones are checked as written first)
ONE_SMALL_STEP = ["max_steps_this_run=1", "model_preset=tiny", "vgg_download=false", "progress=false",
                  "code_images=8", "code_samples=8"]


def _help_text() -> str:
    return train_module.command_line().format_help()


def documented_commands() -> list[tuple[str, str]]:
    """(where, command) for each training command in the help, the README, docs/ and the notebooks."""
    texts = [("--help", _help_text()), ("README.md", (ROOT / "README.md").read_text())]
    texts += [(f"docs/{p.name}", p.read_text()) for p in sorted((ROOT / "docs").glob("*.md"))]
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        texts += [(f"notebooks/{path.name}", "".join(cell["source"])) for cell in cells]
    found = [(where, " ".join(match[0].replace("\\\n", " ").split()))  # continuation lines joined
             for where, text in texts for match in COMMAND.finditer(text)]
    return list(dict.fromkeys(found))


COMMANDS = documented_commands()


def arguments(command: str) -> list[str]:
    """The trainer's own arguments: after ``-m ca2sis_lib.train``, placeholders filled in."""
    words = shlex.split(command)
    return [PLACEHOLDERS.get(word, word) for word in words[words.index("ca2sis_lib.train") + 1:]]


def test_the_documented_commands_are_found():
    commands = [command for _, command in COMMANDS]
    assert len(commands) >= 8, COMMANDS
    assert "python -m ca2sis_lib.train --preset toy-ca2sis --out runs/toy --set steps=500" in commands  # --help
    assert {where for where, _ in COMMANDS} >= {"--help", "README.md", "docs/training_recipes.md",
                                                "notebooks/03_training.ipynb"}
    assert any(command.startswith("torchrun") for command in commands)


@pytest.mark.parametrize("where, command", COMMANDS, ids=[f"{w}: {c[:70]}" for w, c in COMMANDS])
def test_each_documented_command_parses_and_validates_as_written(where, command):
    argv = arguments(command)
    args = train_module.command_line().parse_args(argv)
    cfg = train_module.config_from_arguments(args)  # validated: a refused setting raises here
    settings = cfg.to_dict()
    for key, value in parse_overrides(args.set).items():  # every --set counts, not only the last one
        assert settings[key] == value or (isinstance(value, dict) and value.items() <= settings[key].items()), key
    if cfg.decay_start is not None and "decay_start" not in parse_overrides(args.set):
        preset = PRESETS[args.preset]  # the preset's schedule, scaled to the steps asked for
        assert cfg.decay_start == round(preset["decay_start"] * cfg.steps / preset.get("steps", 2000))


def test_a_preset_schedule_scales_with_the_steps_unless_set():
    assert resolve_config("toy-ca2sis", overrides={"steps": 500}).decay_start == 325  # 1300 of 2000
    assert resolve_config("paper", overrides={"steps": "1e3"}).decay_start == 500  # 700k of 1.4M
    assert resolve_config("toy-ca2sis", overrides={"steps": 500, "decay_start": 100}).decay_start == 100
    assert resolve_config("toy-ca2sis", overrides={"steps": 500, "decay_start": None}).decay_start is None
    assert resolve_config("toy-ca2sis").decay_start == 1300 and resolve_config("smoke").decay_start is None
    with pytest.raises(ValueError, match="decay_start=600 must be a whole number in \\[0, 500\\]"):
        resolve_config("toy-ca2sis", overrides={"steps": 500, "decay_start": 600})  # set explicitly: checked


@pytest.mark.slow
def test_each_documented_command_runs(tmp_path, monkeypatch, capsys):
    """Every command, as written, plus ``--set`` settings that make it one small step (a tiny model,
    no VGG download); in a folder with the data the commands name. Commands that start from another
    run's checkpoint (--set pretrained=runs/...) run after the one that makes it."""
    monkeypatch.chdir(tmp_path)
    write_folder_dataset(tmp_path / "data" / "celebamask256" / "train", count=4)
    ordered = sorted(COMMANDS, key=lambda item: "pretrained=runs/" in item[1])
    for where, command in ordered:
        argv = arguments(command) + ["--set", *ONE_SMALL_STEP]
        assert train_module.main(argv) == 0, (where, command, capsys.readouterr().err[-2000:])
        out = train_module.command_line().parse_args(argv).out or "runs/default"
        assert load_checkpoint(Path(out) / "checkpoint.pt")["step"] >= 1, command
