"""The trainer: it runs, logs, checkpoints atomically, resumes exactly, refuses bad input, and
scales to two processes with torchrun (gloo on the CPU)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ca2sis_lib import train as train_module
from ca2sis_lib.checkpoint_io import load_checkpoint, save_atomic, tensor_digest
from ca2sis_lib.loading import load_generator
from ca2sis_lib.masks import as_one_hot
from ca2sis_lib.models.factory import MAPPING_PREFIX, build_generator
from ca2sis_lib.train import train
from ca2sis_lib.training import steps as steps_module
from ca2sis_lib.training.config import TrainConfig, parse_overrides, resolve_config


def smoke(tmp_path: Path, **overrides) -> TrainConfig:
    return resolve_config("smoke", overrides={"out_dir": str(tmp_path / "run"), **overrides})


def test_smoke_run_writes_log_checkpoint_config_and_samples(tmp_path):
    summary = train(smoke(tmp_path))
    run = tmp_path / "run"
    assert summary["finished"] and summary["step"] == 4
    rows = (run / "log.csv").read_text().strip().splitlines()
    assert rows[0].startswith("step,lr_g,") and "g_attn" in rows[0] and "d_hinge" in rows[0]
    assert len(rows) == 1 + 4
    assert (run / "config.yaml").exists() and (run / "samples" / "step_0000004.png").exists()
    state = load_checkpoint(run / "checkpoint.pt")  # weights_only=True
    assert state["step"] == 4 and {"generator", "discriminator", "opt_g", "opt_d", "rng"} <= set(state)
    assert summary["perceptual"] == "off"
    model = load_generator(run / "checkpoint.pt")
    assert model.config.num_classes == 12


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    train(smoke(tmp_path / "a", steps=4, ema_decay=0.9))
    first = train(smoke(tmp_path / "b", steps=4, ema_decay=0.9, max_steps_this_run=2))
    assert not first["finished"] and first["step"] == 2
    resumed = train(smoke(tmp_path / "b", steps=4, ema_decay=0.9))
    assert resumed["steps_done"] == 2 and resumed["finished"]
    a = load_checkpoint(tmp_path / "a" / "run" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "b" / "run" / "checkpoint.pt")
    for part in ("generator", "discriminator", "ema"):
        assert tensor_digest(a[part]) == tensor_digest(b[part]), part


def test_ema_warmup_follows_the_recent_weights(tmp_path):
    """Without warm-up, after 4 steps at decay 0.99 the EMA is still 96 % initialisation; with it,
    decay_t = min(0.99, (1 + t) / (10 + t)) keeps 9!·4!/13! ≈ 0.0014 % of it."""
    def ema_and_raw(run: str, warmup: bool):
        train(smoke(tmp_path / run, steps=4, ema_decay=0.99, ema_warmup=warmup))
        state = load_checkpoint(tmp_path / run / "run" / "checkpoint.pt")
        return state["ema"], state["generator"]

    slow, raw = ema_and_raw("plain", False)
    fast, raw_again = ema_and_raw("warm", True)
    assert tensor_digest(raw) == tensor_digest(raw_again)  # the flag changes only the EMA copy
    key = next(k for k, v in raw.items() if v.is_floating_point() and v.numel() > 100)
    gap_slow, gap_fast = (slow[key] - raw[key]).norm(), (fast[key] - raw[key]).norm()
    assert gap_fast < 0.3 * gap_slow  # the warmed-up EMA sits next to the trained weights (0.19 measured)


def test_resume_into_another_config_names_the_mismatch(tmp_path):
    train(smoke(tmp_path, steps=2))
    with pytest.raises(ValueError, match="style_dim"):
        train(smoke(tmp_path, steps=4, model_overrides={"style_dim": 32}))


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_config("nope")
    with pytest.raises(ValueError, match="unknown training config keys"):
        resolve_config("smoke", overrides={"batchsize": 3})
    with pytest.raises(ValueError, match="unknown model preset"):
        resolve_config("smoke", overrides={"model_preset": "huge"}).model_config()


def test_numbers_on_the_command_line_get_their_keys_type():
    # YAML 1.1 reads 8e-4 and 1e3 as strings; they must still reach the optimiser as numbers
    overrides = parse_overrides(["lr_g=8e-4", "steps=1e3", "decay_start=5e2", "progress=false"])
    cfg = resolve_config("smoke", overrides=overrides)
    assert cfg.lr_g == 8e-4 and isinstance(cfg.lr_g, float)
    assert cfg.steps == 1000 and isinstance(cfg.steps, int)
    assert cfg.decay_start == 500 and isinstance(cfg.decay_start, int)  # an `int | None` key
    assert resolve_config("smoke", overrides={"decay_start": None}).decay_start is None
    with pytest.raises(ValueError, match="'lr_d' expects a number"):
        resolve_config("smoke", overrides={"lr_d": "fast"})
    with pytest.raises(ValueError, match="'steps' expects a whole number"):
        resolve_config("smoke", overrides={"steps": 2.5})
    with pytest.raises(ValueError, match="'augment' expects true or false"):
        resolve_config("smoke", overrides={"augment": "yes please"})


def test_class_count_mismatch_and_empty_dataset(tmp_path):
    with pytest.raises(ValueError, match="dataset has 12 classes but the model config expects 19"):
        train(smoke(tmp_path, model_overrides={"num_classes": 19}))
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "labels").mkdir(parents=True)
    with pytest.raises(ValueError, match="no image/label pairs"):
        train(smoke(tmp_path, data=str(tmp_path / "empty")))


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_loss = steps_module.hinge_g_loss
    calls = {"n": 0}

    def exploding(pred):
        calls["n"] += 1
        loss = real_loss(pred)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(steps_module, "hinge_g_loss", exploding)
    with pytest.raises(FloatingPointError, match="step 2"):
        train(smoke(tmp_path))
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["step"] == 2 and all(torch.isfinite(t).all() for t in state["generator"].values())


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = save_atomic({"x": torch.ones(3)}, tmp_path / "c.pt")

    def broken_save(obj, handle):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_atomic({"x": torch.zeros(3)}, path)
    assert torch.equal(load_checkpoint(path)["x"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_cli_overrides_and_errors(tmp_path):
    cfg = resolve_config("smoke", overrides=parse_overrides(["steps=7", "model_overrides.style_dim=32"]))
    assert cfg.steps == 7 and cfg.model_overrides == {"style_dim": 32}
    assert train_module.main(["--preset", "smoke", "--set", "bogus=1"]) == 2


@pytest.mark.slow
def test_torchrun_two_processes_end_with_identical_weights(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "ca2sis_lib.train", "--preset", "smoke", "--out", str(out), "--set", "steps=3", "toy_samples=8"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert len(set(summary["generator_digests"])) == 1
    assert sorted(p.name for p in out.glob("*.pt")) == ["checkpoint.pt"]
    assert len((out / "log.csv").read_text().strip().splitlines()) == 1 + 3


def test_mapping_stage_trains_only_the_mapping_network(tmp_path):
    """The mapping stage (docs/architecture.md#mapping-network) starts from the shipped reconstruction
    generator and changes only mapping.*; the exported mapping file completes the shipped generator
    for noise-driven generation."""
    from ca2sis_lib.loading import resolve
    from ca2sis_lib.shipped import export_generator, load_shipped_file

    cfg = resolve_config("toy-mapping", overrides={"out_dir": str(tmp_path / "map"), "steps": 2, "batch_size": 2,
                                                   "toy_samples": 8, "decay_start": 1, "ema_decay": 0.0,
                                                   "progress": False, "sample_every": 2, "checkpoint_every": 2})
    summary = train(cfg)
    assert summary["finished"]
    state = load_checkpoint(tmp_path / "map" / "checkpoint.pt")
    base = load_shipped_file(resolve("ca2sis_tiny_toy")).state_dict()
    changed = {k for k, v in state["generator"].items() if not torch.equal(v, base[k])}
    assert changed and all(k.startswith(MAPPING_PREFIX) for k in changed)
    assert "g_code" in (tmp_path / "map" / "log.csv").read_text().splitlines()[0]  # L_code, on 8 images
    # export beside a copy of the shipped generator: the loader picks the mapping network up
    import shutil

    shipped_dir = tmp_path / "shipped"
    shipped_dir.mkdir()
    export_generator(tmp_path / "map", "mini_mapping", dest=shipped_dir, parts=("mapping",))
    (shipped_dir / "mini.pt").write_bytes(resolve("ca2sis_tiny_toy").read_bytes())
    manifest = json.loads((shipped_dir / "manifest.json").read_text())
    from ca2sis_lib.checkpoint_io import sha256

    manifest["mini"] = {"file": "mini.pt", "sha256": sha256(shipped_dir / "mini.pt")}
    (shipped_dir / "manifest.json").write_text(json.dumps(manifest))
    model = load_shipped_file(shipped_dir / "mini.pt")
    for k, v in state["generator"].items():
        if k.startswith(MAPPING_PREFIX):
            assert torch.allclose(model.state_dict()[k], v, atol=1e-2 * (1 + v.abs().max().item())), k
    shutil.rmtree(shipped_dir)


def test_code_loss_is_zero_on_real_codes_one_on_a_collapse_and_pulls_a_collapse_apart():
    """L_code (docs/training_recipes.md#the-mapping-network): a sliced Wasserstein distance in the real
    codes' principal coordinates. A covariance loss has no gradient at zero spread (the mapping
    network's start); this one does."""
    from ca2sis_lib.losses import code_distribution_loss, principal_axes

    torch.manual_seed(0)
    real = torch.randn(256, 3, 4) @ torch.randn(4, 4) + torch.randn(3, 4)  # (M, K, D), correlated, off-centre
    mean, axes = principal_axes(real, 6)
    assert axes.shape == (12, 6) and torch.allclose(axes.T @ axes, torch.eye(6), atol=1e-4)
    assert code_distribution_loss(real, real, mean, axes).item() == 0.0
    collapsed = mean.reshape(1, 3, 4).expand(256, 3, 4).clone().requires_grad_(True)
    loss = code_distribution_loss(collapsed * (1 + 1e-6 * torch.randn(256, 1, 1)), real, mean, axes)
    assert loss.item() == pytest.approx(1.0, abs=0.05)
    loss.backward()
    assert collapsed.grad.abs().sum() > 0
    shifted = code_distribution_loss(real + 0.5 * torch.randn(1, 3, 4), real, mean, axes)
    assert 0 < shifted.item() < 1


def test_mapping_stage_with_code_loss_logs_it_and_resumes_exactly(tmp_path):
    def mapping(run: str, **more):
        return train(resolve_config("toy-mapping", overrides={
            "out_dir": str(tmp_path / run), "steps": 4, "batch_size": 2, "toy_samples": 8, "decay_start": None,
            "lambda_code": 1.0, "code_images": 8, "code_samples": 6, "code_axes": 5, "progress": False,
            "sample_every": 2, "checkpoint_every": 2, **more}))

    mapping("a")
    assert not mapping("b", max_steps_this_run=2)["finished"]
    assert mapping("b")["finished"]
    assert "g_code" in (tmp_path / "a" / "log.csv").read_text().splitlines()[0]
    a, b = (load_checkpoint(tmp_path / run / "checkpoint.pt") for run in "ab")
    for part in ("generator", "discriminator"):  # the toy-mapping preset keeps no EMA
        assert tensor_digest(a[part]) == tensor_digest(b[part]), part


def test_mapping_stage_needs_a_pretrained_generator(tmp_path):
    with pytest.raises(ValueError, match="pretrained"):
        resolve_config("toy-mapping", overrides={"pretrained": ""})
    with pytest.raises(FileNotFoundError, match="no checkpoint 'nope'"):
        train(resolve_config("toy-mapping", overrides={"pretrained": "nope", "out_dir": str(tmp_path / "x")}))


def test_balanced_attention_loss_changes_only_the_loss():
    """attn_pos_weight_max swaps L_att for the class-balanced variant computed from the same logits;
    the image is the same, and the SPADE family (no attention) gives no logits for L_att."""
    from ca2sis_lib.losses import attention_loss
    from ca2sis_lib.models import CA2SISConfig
    from ca2sis_lib.training.stage import GeneratorStep

    torch.manual_seed(0)
    model = build_generator("ca2sis", CA2SISConfig.tiny()).eval()
    labels = torch.randint(0, model.config.num_classes, (2, 64, 64))
    labels[:, :8, :8] = 3  # a small class beside large ones
    one_hot = as_one_hot(labels, model.config.num_classes)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        step_image, logits, _ = GeneratorStep(model, "reconstruction")(image, one_hot)
        out = model(image, one_hot, return_attention=True)
    assert torch.equal(step_image, out.image)
    assert all(torch.equal(a, b) for a, b in zip(logits, out.attention.values()))
    plain, balanced = attention_loss(logits, one_hot), attention_loss(logits, one_hot, pos_weight_max=200.0)
    assert abs(plain.item() - math.log(2)) < 0.05  # untrained: every logit near 0
    assert balanced > plain * 1.5  # positives of rare classes now count
    toy_sean = resolve_config("toy-sean")
    sean = build_generator("sean", toy_sean.model_config()).eval()
    with torch.no_grad():
        sean_image, sean_logits, _ = GeneratorStep(sean, "reconstruction")(image, one_hot)
    assert sean_logits is None and sean_image.shape == image.shape
    assert resolve_config("toy-ca2sis").attn_pos_weight_max == resolve_config("toy-mapping").attn_pos_weight_max > 0
    assert resolve_config("paper").attn_pos_weight_max == 0  # the paper recipe keeps the authors' L_att


def test_toy_presets_differ_only_by_family_and_attention_loss():
    """The comparison in notebook 02 changes only the conditioning: the SEAN-style toy recipe is the
    CA²-SIS one (data, steps, batch, optimiser, every other loss) minus L_att, which it has no use for."""
    ca2sis, sean = resolve_config("toy-ca2sis").to_dict(), resolve_config("toy-sean").to_dict()
    differing = {key for key in ca2sis if ca2sis[key] != sean[key]}
    assert differing == {"family", "lambda_attn", "attn_pos_weight_max"}
    assert resolve_config("toy-ca2sis").lambda_attn == 5.0 and resolve_config("paper").lambda_attn == 1.0


def test_channels_last_is_a_layout_not_a_different_model(tmp_path):
    """`channels_last` (on in the toy presets, for CPU speed) changes how tensors lie in memory, not
    the maths: the same seed gives the same losses and weights, up to float summation order."""
    runs = {}
    for name, flag in (("plain", False), ("nhwc", True)):
        train(smoke(tmp_path / name, steps=2, channels_last=flag))
        runs[name] = load_checkpoint(tmp_path / name / "run" / "checkpoint.pt")
        rows = (tmp_path / name / "run" / "log.csv").read_text().strip().splitlines()
        runs[name]["losses"] = [float(x) for x in rows[1].split(",")[2:]]  # step 1, before any update
    assert runs["plain"]["losses"] == pytest.approx(runs["nhwc"]["losses"], rel=1e-4, abs=1e-5)
    for key, weight in runs["plain"]["generator"].items():
        torch.testing.assert_close(runs["nhwc"]["generator"][key], weight, rtol=1e-3, atol=1e-4, msg=key)
    assert runs["nhwc"]["generator"]["style_encoder.first_layer.0.weight"].is_contiguous(
        memory_format=torch.channels_last)  # the flag did take effect
    assert resolve_config("toy-ca2sis").channels_last and not resolve_config("smoke").channels_last


def test_bf16_autocast_trains_on_the_cpu_close_to_fp32(tmp_path):
    """`amp="bf16"` (the switch for CPUs with bf16 units, docs/performance.md) trains end to end on
    the CPU: finite losses, weights that move, and first-step losses within 3 % of fp32's (the same
    weights and batch; bf16 keeps 8 bits of mantissa, the measured output error is about 3e-3)."""
    from ca2sis_lib.training.run import setup_run

    logs, states = {}, {}
    for amp in ("none", "bf16"):
        train(smoke(tmp_path / amp, steps=2, batch_size=1, amp=amp))
        rows = (tmp_path / amp / "run" / "log.csv").read_text().strip().splitlines()
        header = rows[0].split(",")
        logs[amp] = [dict(zip(header, map(float, row.split(",")))) for row in rows[1:]]
        states[amp] = load_checkpoint(tmp_path / amp / "run" / "checkpoint.pt")
    initial = setup_run(smoke(tmp_path / "init", steps=2, batch_size=1)).generator.state_dict()
    for row in logs["bf16"]:
        assert all(math.isfinite(v) for v in row.values()), row
    for key in ("g_total", "g_l1", "g_attn", "d_hinge"):
        assert logs["bf16"][0][key] == pytest.approx(logs["none"][0][key], rel=0.03), key
    moved = [k for k, w in states["bf16"]["generator"].items()
             if w.is_floating_point() and not torch.equal(w, initial[k])]
    assert len(moved) > len(initial) // 2  # the optimiser stepped in bf16 training
    weight = "generator.out_conv.weight"
    assert states["bf16"]["generator"][weight].dtype == torch.float32  # autocast keeps fp32 master weights
    torch.testing.assert_close(states["bf16"]["generator"][weight], states["none"]["generator"][weight],
                               rtol=0.05, atol=2e-3)


def test_no_perceptual_loss_is_loaded_or_announced_when_its_weight_is_zero(recwarn):
    from ca2sis_lib.losses import make_perceptual_loss

    assert make_perceptual_loss(lambda_vgg=0.0) is None
    assert not [w for w in recwarn if "VGG" in str(w.message)], "λ_VGG = 0 uses no VGG loss: nothing to warn about"


def test_each_stage_has_its_own_generator_loss_and_none_branches_on_the_stage():
    import inspect

    from ca2sis_lib.training.stage import STAGES

    assert set(steps_module.GENERATOR_LOSSES) == set(STAGES)
    for loss in steps_module.GENERATOR_LOSSES.values():
        assert "stage" not in inspect.getsource(loss).split('"""')[-1]  # the body: chosen once, not branched inside
    assert "g_fm" not in inspect.getsource(steps_module.mapping_losses)  # the paper's L_G terms live in one place
