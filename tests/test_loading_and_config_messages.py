"""Bad files and settings stop with the project's own one-line reason, naming the problem and the fix:
a text file or a number where a checkpoint should be, NaN weights, model_overrides of the wrong type,
a config file with a key written twice or that is not text at all."""

import re

import pytest
import torch

from ca2sis_lib import train as train_module
from ca2sis_lib.checkpoint_io import CheckpointReadError, NonFiniteWeightsWarning
from ca2sis_lib.loading import load_generator, load_model
from ca2sis_lib.models import CA2SIS, CA2SISConfig
from ca2sis_lib.training.config import parse_overrides, resolve_config


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("content", ["text", "number", "dict"])
def test_a_run_folder_whose_checkpoint_is_not_one_stops_in_one_line(tmp_path, capsys, content):
    """checkpoint.pt holding the text '101', torch.save(101) or an unrelated dict: a traceback (a
    ValueError, a TypeError 'int' object is not subscriptable, a KeyError), now one line."""
    out = tmp_path / "run"
    out.mkdir()
    if content == "text":
        (out / "checkpoint.pt").write_text("101")
    else:
        torch.save(101 if content == "number" else {"notes": "mine"}, out / "checkpoint.pt")
    assert train_module.main(["--preset", "smoke", "--out", str(out), "--set", "toy_samples=4"]) == 1
    line = _one_error_line(capsys)
    reason = {"text": "torch.load cannot read it: it was not written by torch.save",
              "number": "it holds a int, not a dict",
              "dict": r"it is not a training checkpoint: it has no \['step', 'model_config'"}[content]
    assert re.search(rf"cannot read checkpoint {re.escape(str(out))}/checkpoint.pt: {reason}", line), line
    assert (out / "checkpoint.pt").exists()  # left as it was


def test_a_pretrained_generator_that_is_a_text_file_stops_in_one_line(tmp_path, capsys):
    (tmp_path / "generator.pt").write_text("101\n")
    argv = ["--preset", "toy-mapping", "--out", str(tmp_path / "map"), "--set", f"pretrained={tmp_path}/generator.pt"]
    assert train_module.main(argv) == 1
    assert "generator.pt' is not a ca2sis checkpoint: torch.load cannot read it" in _one_error_line(capsys)


def test_number_and_unrelated_dict_files_are_not_generators(tmp_path):
    torch.save(101, tmp_path / "number.pt")
    torch.save({"notes": "mine"}, tmp_path / "dict.pt")
    with pytest.raises(CheckpointReadError, match="number.pt: it holds a int, not a dict"):
        load_generator(tmp_path / "number.pt")
    with pytest.raises(CheckpointReadError, match=r"dict.pt: it is not a training checkpoint: it has no \['family'"):
        load_generator(tmp_path / "dict.pt")


def test_nan_weights_are_loaded_with_a_warning_naming_the_fix(tmp_path):
    torch.manual_seed(0)
    config = CA2SISConfig.tiny()
    weights = CA2SIS(config).state_dict()
    weights["generator.out_conv.weight"].view(-1)[0] = float("nan")
    torch.save({"family": "ca2sis", "model_config": config.to_dict(), "generator": weights, "ema": None},
               tmp_path / "diverged.pt")
    message = (r"diverged.pt: 1 of \d+ weight tensors hold NaN or inf values \(e.g. generator.out_conv.weight\), so "
               "the model draws NaN images. Fix: load an earlier checkpoint")
    with pytest.warns(NonFiniteWeightsWarning, match=message) as caught:
        load_model(tmp_path / "diverged.pt")
    assert caught[0].filename == __file__  # the warning points at the line that loaded the file
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model("ca2sis_tiny_toy")  # finite weights: not a word


@pytest.mark.parametrize("setting, message", [
    ("model_overrides.num_classes=abc", "model_overrides key 'num_classes' expects a whole number, got 'abc'"),
    ("model_overrides.image_size=64.5", "model_overrides key 'image_size' expects a whole number, got 64.5"),
    ("model_overrides.exclude_background=1", "model_overrides key 'exclude_background' expects true or false, got 1"),
    ("model_overrides.num_class=19", r"unknown model_overrides keys \['num_class'\] for the ca2sis family; valid "),
])
def test_model_overrides_of_the_wrong_type_are_refused_before_any_work(setting, message, tmp_path, capsys):
    """They reached the model's constructor: TypeError "'<' not supported between instances of 'str'
    and 'int'" after the run folder was taken."""
    with pytest.raises(ValueError, match=message):
        resolve_config("smoke", overrides=parse_overrides([setting]))
    assert train_module.main(["--preset", "smoke", "--out", str(tmp_path / "run"), "--set", setting]) == 2
    assert re.search(message, _one_error_line(capsys)) and not (tmp_path / "run").exists()
    assert resolve_config("smoke", overrides=parse_overrides(["model_overrides.num_classes=19.0"])).model_config(
    ).num_classes == 19  # a whole number written as a float is fine


def test_a_config_file_with_a_key_twice_is_refused_naming_the_key(tmp_path, capsys):
    """YAML keeps the last of two equal keys without a word: 'steps: 50' then 'steps: 5000' ran 5000."""
    path = tmp_path / "run.yaml"
    path.write_text("steps: 50\nlr_g: 2.0e-4\nsteps: 5000\nmodel_overrides:\n  style_dim: 32\n  style_dim: 64\n")
    twice = f"config file {path}: key 'steps' appears twice (lines 1 and 3), and only one value can hold; delete the "
    with pytest.raises(ValueError, match=re.escape(twice + "line you do not mean")):
        resolve_config("smoke", str(path))
    path.write_text("steps: 50\nmodel_overrides:\n  style_dim: 32\n  style_dim: 64\n")
    with pytest.raises(ValueError, match=r"key 'style_dim' appears twice \(lines 3 and 4\)"):
        resolve_config("smoke", str(path))
    path.write_text("defaults: &d {steps: 3}\nsteps: 5\n")  # an anchor is fine; so is a key per mapping
    assert train_module.main(["--preset", "smoke", "--config", str(path), "--out", str(tmp_path / "x")]) == 2
    assert "unknown training config keys ['defaults']" in _one_error_line(capsys)


def test_a_binary_config_file_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "weights.yaml"
    torch.save({"w": torch.ones(3)}, path)  # e.g. a checkpoint given as --config
    assert train_module.main(["--preset", "smoke", "--config", str(path), "--out", str(tmp_path / "x")]) == 2
    line = _one_error_line(capsys)
    assert re.search(rf"config file {re.escape(str(path))} is not a text file \(byte 0x[0-9a-f]{{2}} at offset \d+ is "
                     r"not UTF-8\): a config is YAML text, lines such as 'steps: 500'", line), line
