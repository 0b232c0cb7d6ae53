"""Runs never lose work: settings checked when built, one run per folder, an honest resume (allowed
changes recorded, every other change refused, the EMA never dropped), leftovers of killed saves
removed, and a full disk reported in one line naming the folder."""

import errno
import os
import subprocess
import sys
import time

import pytest
import torch
import yaml

from ca2sis_lib import train as train_module
from ca2sis_lib.checkpoint_io import CheckpointWriteError, load_checkpoint, remove_partial_writes, save_atomic
from ca2sis_lib.train import train
from ca2sis_lib.training import steps as steps_module
from ca2sis_lib.training.config import parse_overrides, resolve_config
from ca2sis_lib.training.lock import RunLock, RunLockedError
from ca2sis_lib.training.resume import ALLOWED_ON_RESUME, ResumeError, check_resume


def smoke(tmp_path, **overrides):
    return resolve_config("smoke", overrides={"out_dir": str(tmp_path / "run"), "toy_samples": 4, **overrides})


@pytest.mark.parametrize("setting, message", [
    ("steps=0", "steps=0 must be a whole number >= 1"), ("steps=-5", "steps=-5 must be"),
    ("batch_size=-1", "batch_size=-1 must be a whole number >= 1"), ("batch_size=0", "batch_size=0"),
    ("checkpoint_every=0", "checkpoint_every=0"), ("log_every=0", "log_every=0"), ("sample_every=0", "sample_every"),
    ("ema_decay=1.5", r"ema_decay=1.5 must be in \[0, 1\)"), ("decay_start=9", r"decay_start=9 .* in \[0, 4\]"),
    ("lr_g=0", "lr_g=0.0 must be a finite number > 0"), ("lr_d=nan", "lr_d=nan"),
    ("betas=oops", "'betas' expects a list of 2 numbers"), ("betas=[0.5,1.0]", r"in \[0, 1\)"),
    ("lambda_fm=-1", "lambda_fm=-1.0 must be a finite number >= 0"), ("toy_samples=1", ">= batch_size=2"),
    ("num_workers=-1", "num_workers=-1"), ("max_steps_this_run=0", "max_steps_this_run=0"),
    ("model_overrides=3", "model_overrides=3 must be a mapping"),
    ("lambda_code=-1", "lambda_code=-1.0 must be a finite number >= 0"),
    ("code_samples=1", "code_samples=1 must be a whole number >= 2"),
    ("code_images=8", "code_samples=256 must be <= code_images=8"), ("code_axes=0", "code_axes=0 must be"),
])
def test_impossible_settings_are_refused_with_their_range(setting, message):
    with pytest.raises(ValueError, match=message):
        resolve_config("smoke", overrides=parse_overrides([setting]))


def test_config_file_must_be_a_mapping_and_the_cli_exits_2(tmp_path, capsys):
    listed = tmp_path / "list.yaml"
    listed.write_text("- steps: 3\n")
    with pytest.raises(ValueError, match="must be a mapping of training config keys.*holds a list"):
        resolve_config("smoke", str(listed))
    with pytest.raises(ValueError, match="does not exist"):
        resolve_config("smoke", str(tmp_path / "missing.yaml"))
    assert train_module.main(["--preset", "smoke", "--out", str(tmp_path / "x"), "--set", "steps=0"]) == 2
    assert "steps=0 must be" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_a_config_yaml_the_run_did_not_write_is_never_overwritten(tmp_path, capsys):
    """A run writes its resolved settings to out_dir/config.yaml: a user's own config kept in the output
    folder (and passed as --config) is refused untouched, and nothing else is written there."""
    folder = tmp_path / "my_run"
    folder.mkdir()
    mine = folder / "config.yaml"
    mine.write_text("# my settings, with my comments\nsteps: 3\ntoy_samples: 4\n")
    assert train_module.main(["--preset", "smoke", "--config", str(mine), "--out", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "was not written by a training run" in err and "choose another --out" in err, err
    assert mine.read_text().startswith("# my settings") and sorted(p.name for p in folder.iterdir()) == ["config.yaml"]


def _kill_while_holding(folder) -> int:
    code = (f"import os, sys; from ca2sis_lib.training.lock import RunLock; lock = RunLock({str(folder)!r}).acquire(); "
            "print(os.getpid(), flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pid = int(holder.stdout.readline())
    holder.kill()
    holder.wait()
    return pid


def test_one_run_per_folder_and_a_killed_runs_lock_and_partial_write_are_taken_over(tmp_path, capsys):
    cfg = smoke(tmp_path, steps=2)
    with RunLock(cfg.out_dir):  # another run holds the folder
        with pytest.raises(RunLockedError, match=f"in use by another training run: process {os.getpid()} on host"):
            train(cfg)
        assert train_module.main(["--preset", "smoke", "--out", cfg.out_dir, "--set", "toy_samples=4"]) == 1
    assert "error:" in capsys.readouterr().err and not (tmp_path / "run" / "checkpoint.pt").exists()

    dead = _kill_while_holding(tmp_path / "run")  # SIGKILL: the lock file stays, its flock is gone
    partial = tmp_path / "run" / ".checkpoint.pt.ab12cd34.tmp"
    partial.write_bytes(b"half a checkpoint")
    other = tmp_path / "run" / ".checkpoint.pt.notours.tmp"  # not our pattern: kept
    other.write_bytes(b"")
    old = time.time() - 60
    os.utime(partial, (old, old))
    assert train(cfg)["finished"]
    err = capsys.readouterr().err
    assert f"left by process {dead}" in err and "no longer runs" in err and "removed .checkpoint.pt.ab12cd34.tmp" in err
    assert not partial.exists() and other.exists() and not (tmp_path / "run" / ".lock").exists()  # released


def test_a_refused_run_names_the_holder_and_a_sigkilled_holder_blocks_nothing(tmp_path):
    """The OS lock (filelock) dies with its process; the holder file names it for the refused run."""
    import signal
    import socket

    code = ("import os, sys; from ca2sis_lib.training.lock import RunLock; lock = RunLock(sys.argv[1]).acquire(); "
            "print(os.getpid(), flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), "--marker-arg"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        pid = int(holder.stdout.readline())
        with pytest.raises(RunLockedError) as refused:
            RunLock(tmp_path).acquire()
        for part in (f"process {pid} on host {socket.gethostname()}", "(started 20", "--marker-arg"):
            assert part in str(refused.value)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    finally:
        holder.kill()
    with RunLock(tmp_path) as lock:  # the kernel released the dead holder's lock: not blocked
        assert lock.taken_over["pid"] == pid
    assert not any(p.name.startswith(".lock") for p in tmp_path.iterdir())  # both files removed on release


def test_leftovers_are_removed_only_when_ours_and_older_than_the_lock(tmp_path):
    names = [".checkpoint.pt.a1b2c3d4.tmp", ".checkpoint.pt.zzzzzzzz.tmp", ".model.pt.a1b2c3d4.tmp",
             ".checkpoint.pt.a1b2.tmp", "checkpoint.pt"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    os.utime(tmp_path / names[0], (1, 1))
    removed = remove_partial_writes(tmp_path, "checkpoint.pt", older_than=time.time() - 30)
    assert [p.name for p in removed] == [names[0]]  # the new one may belong to a live save


def _state(cfg, ema=True, step=2):
    return {"model_config": cfg.model_config().to_dict(), "train_config": cfg.to_dict(), "step": step,
            "ema": {"w": torch.zeros(1)} if ema else None, "world_size": 1, "perceptual": "off"}


def test_resume_refuses_every_change_but_the_allowed_ones(tmp_path):
    base = smoke(tmp_path, ema_decay=0.9)
    state, model = _state(base), base.model_config().to_dict()

    def check(**changes):
        cfg = smoke(tmp_path, **{"ema_decay": 0.9, **changes})
        check_resume(state, cfg, cfg.model_config().to_dict(), 1, "off", tmp_path / "checkpoint.pt")

    check(steps=8, decay_start=6, log_every=3, sample_every=5, checkpoint_every=4, max_steps_this_run=1,
          progress=True, num_workers=1, device="cpu", channels_last=True)  # all allowed
    for change, message in (({"lr_g": 8e-4}, r"lr_g \(checkpoint 0.0001, this run 0.0008\)"),
                            ({"lambda_l1": 3.0}, r"lambda_l1 \(checkpoint 10.0, this run 3.0\)"),
                            ({"amp": "bf16"}, r"amp \(checkpoint 'none', this run 'bf16'\)"),
                            ({"batch_size": 1}, "batch_size"), ({"seed": 3}, "seed"),
                            ({"ema_decay": 0.0}, "holds EMA weights .* would drop them; keep ema_decay=0.9"),
                            ({"ema_decay": 0.99}, r"ema_decay \(checkpoint 0.9, this run 0.99\)"),
                            ({"steps": 1}, "at step 2 and steps=1 ends before it")):
        with pytest.raises(ResumeError, match=message):
            check(**change)
    no_ema = _state(smoke(tmp_path), ema=False)
    with pytest.raises(ResumeError, match="has no EMA weights .* keep ema_decay=0"):
        check_resume(no_ema, smoke(tmp_path, ema_decay=0.995), model, 1, "off", tmp_path)
    with pytest.raises(ResumeError, match="written by 1 process.*this run has 2"):
        check_resume(state, base, model, 2, "off", tmp_path)
    with pytest.raises(ResumeError, match="perceptual term was 'off'"):
        check_resume(state, base, model, 1, "vgg19", tmp_path)
    assert {"steps", "decay_start", "max_steps_this_run", "device"} <= set(ALLOWED_ON_RESUME)
    assert not {"lr_g", "amp", "ema_decay", "batch_size", "seed", "data"} & set(ALLOWED_ON_RESUME)


def test_a_run_is_extended_and_each_part_is_recorded(tmp_path):
    train(smoke(tmp_path, steps=2))
    with pytest.raises(ResumeError, match="lr_g"):
        train(smoke(tmp_path, steps=2, lr_g=1e-3))
    with pytest.raises(ResumeError, match="has no EMA weights"):  # 0 -> 0.995 used to crash in load_state_dict
        train(smoke(tmp_path, steps=3, ema_decay=0.995))
    summary = train(smoke(tmp_path, steps=3, log_every=2))
    assert summary["steps_done"] == 1 and summary["finished"]
    parts = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["parts"]
    assert [(p["start_step"], p["end_step"]) for p in parts] == [(0, 2), (2, 3)]
    assert parts[1]["changed"] == {"steps": {"from": 2, "to": 3}, "log_every": {"from": 1, "to": 2}}
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["parts"] == parts


def test_non_finite_loss_before_any_checkpoint_says_so(tmp_path, monkeypatch):
    real = steps_module.hinge_g_loss
    monkeypatch.setattr(steps_module, "hinge_g_loss", lambda pred: real(pred) * float("nan"))
    with pytest.raises(FloatingPointError, match=r"step 0.*No checkpoint was written yet.*start again") as error:
        train(smoke(tmp_path, steps=2))
    assert "kept at" not in str(error.value) and not (tmp_path / "run" / ".lock").exists()


@pytest.mark.parametrize("torch_wraps_it", [False, True])
def test_a_full_disk_is_one_clear_line_naming_the_folder(tmp_path, monkeypatch, torch_wraps_it):
    def full_disk(obj, handle):
        handle.write(b"partial")
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            if not torch_wraps_it:
                raise
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")  # noqa: B904

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointWriteError) as error:
        save_atomic({"x": torch.ones(1)}, tmp_path / "checkpoint.pt")
    message = str(error.value)
    assert message.startswith(f"could not write checkpoint.pt to {tmp_path}: No space left on device (errno 28)")
    assert "free space there or choose another --out" in message and "\n" not in message
    assert error.value.errno == errno.ENOSPC and list(tmp_path.iterdir()) == []  # no temporary file left


def test_a_file_that_is_not_a_checkpoint_is_refused_without_torchs_unsafe_advice(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match="not written by torch.save") as caught:
        load_checkpoint(text)
    assert "weights_only" not in str(caught.value) and "checkpoint.pt" in str(caught.value)
