"""Exact resume on a real folder dataset with augmentation (random crop and flip): a run killed with
SIGKILL at random steps, broken by ``max_steps_this_run`` and resumed with another ``num_workers``
ends with the weights and the log of an uninterrupted run; a changed file list is refused (or
accepted with ``allow_data_change``, and recorded); a killed attempt's log rows are never doubled."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import write_folder_dataset

from ca2sis_lib.checkpoint_io import load_checkpoint, tensor_digest
from ca2sis_lib.train import train
from ca2sis_lib.training.config import resolve_config
from ca2sis_lib.training.data import StepItems, item_generator
from ca2sis_lib.training.resume import ResumeError
from ca2sis_lib.training.run_log import truncate_log

ROOT = Path(__file__).resolve().parents[1]
K = 12  # the tiny model's classes, as write_folder_dataset writes them
STEPS, CHECKPOINT_EVERY = 8, 3
RUN_SETTINGS = [f"steps={STEPS}", f"checkpoint_every={CHECKPOINT_EVERY}", "load_size=72", "augment=true",
                "ema_decay=0.9", "batch_size=2", "log_every=1", "sample_every=1000"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_folder_dataset(tmp_path_factory.mktemp("folder") / "train")


def _command(data: Path, out: Path, workers: int, *more: str) -> list[str]:
    return [sys.executable, "-m", "ca2sis_lib.train", "--preset", "smoke", "--data", str(data), "--out", str(out),
            "--set", *RUN_SETTINGS, f"num_workers={workers}", *more]


ENV = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(ROOT)}  # one thread count for every process


def _logged_steps(out: Path) -> int:
    """The step of the last complete row of log.csv (0 when there is none yet)."""
    try:
        rows = [line for line in (out / "log.csv").read_text().splitlines(keepends=True)[1:] if line.endswith("\n")]
    except FileNotFoundError:
        return 0
    return int(rows[-1].split(",", 1)[0]) if rows else 0


def run_and_kill_after(command: list[str], out: Path, step: int) -> None:
    """Start a training process and SIGKILL it as soon as log.csv shows step ``step``: wherever it is
    then (the next step, a checkpoint write, the loader's workers), as a crash or a lost session would."""
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # its own group: the loader's workers die with it
    deadline = time.time() + 900
    while _logged_steps(out) < step and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    alive = process.poll() is None
    os.killpg(process.pid, signal.SIGKILL)
    _, err = process.communicate()
    assert alive, f"the run ended before step {step}: {err[-2000:]}"


def run_to_end(command: list[str]) -> None:
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]


def _state(out: Path) -> dict:
    state = load_checkpoint(out / "checkpoint.pt")
    return {part: tensor_digest(state[part]) for part in ("generator", "discriminator", "ema")} | {
        "step": state["step"]}


@pytest.fixture(scope="module")
def uninterrupted(folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "run"
    run_to_end(_command(folder, out, 0))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_killed_and_broken_runs_on_a_folder_end_exactly_as_an_uninterrupted_one(folder, uninterrupted, tmp_path,
                                                                              workers):
    """Kill -9 before the first checkpoint and at a random later step, a max_steps_this_run break,
    and resumes with the other worker count: the same weights, EMA, discriminator and log.csv,
    byte for byte. (The loader drew from the global generator after it was restored, and the crop
    and flip drew from it inside the workers: neither interruptions nor worker counts kept them.)"""
    out, other = tmp_path / "run", 2 - workers
    chance = random.Random(1000 + workers)
    run_and_kill_after(_command(folder, out, workers), out, chance.randint(1, CHECKPOINT_EVERY - 1))
    assert not (out / "checkpoint.pt").exists()  # killed before its first checkpoint
    run_and_kill_after(_command(folder, out, other), out, chance.randint(CHECKPOINT_EVERY + 1, STEPS - 3))
    resumed_at = load_checkpoint(out / "checkpoint.pt")["step"]
    run_to_end(_command(folder, out, workers, "max_steps_this_run=1"))  # a session's budget: ends cleanly
    assert load_checkpoint(out / "checkpoint.pt")["step"] == resumed_at + 1
    run_to_end(_command(folder, out, other))
    assert _state(out) == _state(uninterrupted)
    assert (out / "log.csv").read_text() == (uninterrupted / "log.csv").read_text()  # every row once, same values
    parts = load_checkpoint(out / "checkpoint.pt")["parts"]
    assert [p["start_step"] for p in parts] == [0, resumed_at, resumed_at + 1]
    assert parts[1]["changed"]["num_workers"] == {"from": other, "to": workers}


def test_each_batch_is_the_same_for_any_worker_count_and_leaves_the_global_generator_alone(folder):
    """The training batches of steps 3 and 4 (random crops and flips) with 0 and 2 loader workers,
    taken alone or after other steps: identical, and torch's global random state is untouched."""
    cfg = resolve_config("smoke", overrides={"data": str(folder), "out_dir": "unused", "load_size": 72, "seed": 5})
    from ca2sis_lib.training.data import StepBatchSampler, build_dataset

    dataset = build_dataset(cfg, K, 64)
    batches = {}
    for workers, start in ((0, 3), (2, 3), (2, 0), (0, 1)):
        sampler = StepBatchSampler(len(dataset), 2, cfg.seed, start, 5)
        loader = torch.utils.data.DataLoader(StepItems(dataset, cfg.seed), batch_sampler=sampler,
                                             num_workers=workers, generator=torch.Generator().manual_seed(0))
        before = torch.get_rng_state()
        batches[workers, start] = dict(zip(range(start, 5), ((b["image"], b["label"]) for b in loader)))
        assert torch.equal(torch.get_rng_state(), before)
    reference = batches[0, 3]
    for steps in batches.values():
        for step in (3, 4):
            assert torch.equal(steps[step][0], reference[step][0]) and torch.equal(steps[step][1], reference[step][1])
    crops = [torch.stack([dataset.item(i, item_generator(5, step, i))["image"] for i in range(4)]) for step in (0, 1)]
    assert not torch.equal(*crops)  # the same items at another step: other crops and flips


def test_a_changed_file_list_is_refused_on_resume_or_accepted_and_recorded(tmp_path):
    data = tmp_path / "train"
    write_folder_dataset(data, count=6)

    def cfg(**more):
        return resolve_config("smoke", overrides={"data": str(data), "out_dir": str(tmp_path / "run"), "steps": 4,
                                                  "load_size": 72, "max_steps_this_run": 2, **more})

    train(cfg())
    for suffix in ("images", "labels"):  # the user removes a bad pair
        (data / suffix / "002.png").unlink()
    (data / "images" / "new.png").write_bytes((data / "images" / "000.png").read_bytes())
    (data / "labels" / "new.png").write_bytes((data / "labels" / "000.png").read_bytes())
    with pytest.raises(ResumeError, match=r"the training files differ from the 6 it was trained on: 1 removed \(002\); "
                                          r"1 added \(new\).*--set allow_data_change=true"):
        train(cfg())
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 2  # nothing changed
    assert train(cfg(allow_data_change=True))["step"] == 4
    parts = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["parts"]
    assert parts[1]["data_change"] == {"files_before": 6, "files_now": 6, "removed": ["002"], "added": ["new"]}
    assert parts[1]["changed"] == {"allow_data_change": {"from": False, "to": True}}
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["parts"] == parts


def test_a_fresh_start_after_a_killed_attempt_logs_each_step_once(tmp_path):
    """A kill before the first checkpoint left log.csv rows; the next run starts at step 0 and appended
    its rows after them (steps 1, 2, 1, 2, 3, 4). A row cut off by the kill is dropped too."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "log.csv").write_text("step,lr_g,g_total\n1,0.1,3.0\n2,0.1,2.9\n3,0.1")  # as a killed attempt left it
    train(resolve_config("smoke", overrides={"out_dir": str(out), "toy_samples": 4}))
    steps = [row.split(",")[0] for row in (out / "log.csv").read_text().splitlines()[1:]]
    assert steps == ["1", "2", "3", "4"]
    log = tmp_path / "log.csv"
    log.write_text("step,lr_g\n1,0.1\n2,0.1\n3,0.")  # resume at step 2 after a kill mid-row
    truncate_log(log, 2)
    assert log.read_text() == "step,lr_g\n1,0.1\n2,0.1\n"
    log.write_text("name,score\nmine,1\n")  # not a training log: never cut
    with pytest.raises(FileExistsError, match="was not written by a training run .* choose another --out"):
        truncate_log(log, 0)
    assert log.read_text() == "name,score\nmine,1\n"
