"""scripts/gpu_check.py: the GPU check's dry run on the CPU, its search for the largest batch under a memory
cap, the wheels it installs from, and the recommendation table that docs/performance.md quotes from its
results (or says it has none)."""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from conftest import load_script

from ca2sis_lib import gpu_recommendations as recs
from ca2sis_lib.training.step_timer import (
    PeakMemory,
    TrainingStep,
    blocky_labels,
    synthetic_batch,
    time_step,
    timing_run,
)

ROOT = Path(__file__).resolve().parents[1]
NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA device; scripts/gpu_check.py runs these paths on one")


@pytest.fixture(scope="module")
def check():
    return load_script("scripts/gpu_check.py")


@pytest.fixture(scope="module")
def jobs():
    return load_script("scripts/gpu_check_jobs.py")


def toy_run(work: Path, **overrides):
    """The paper preset's code on the dry run's toy model (64², 19 classes), on the CPU."""
    check = load_script("scripts/gpu_check.py")
    return timing_run("paper", work, device="cpu", model_preset="tiny",
                      model_overrides=check.TOY_MODEL["model_overrides"], **overrides)


# -- the largest batch under a cap ------------------------------------------------------------------------
@pytest.mark.parametrize("guess", [1, 5, 12, 13, 14, 40, 600])
def test_largest_fitting_finds_the_boundary_from_any_guess(jobs, guess):
    largest, failed, tried = jobs.largest_fitting(lambda b: b <= 13, guess, limit=512)
    assert (largest, failed) == (13, 14)
    assert tried[13] and not tried[14]
    assert len(tried) <= 2 * 9 + 2  # galloping from the guess, then bisecting: about 2·log2(512), no walk


def test_largest_fitting_at_the_ends(jobs):
    assert jobs.largest_fitting(lambda b: False, 8, limit=512)[:2] == (0, 1)  # not even batch 1
    assert jobs.largest_fitting(lambda b: True, 3, limit=64)[:2] == (64, None)  # the limit fits: no failure seen


def test_per_image_memory_is_a_least_squares_line(jobs):
    fixed, per_image = jobs._per_image([[1, 3.0], [2, 5.0], [4, 9.0], [8, 17.0]])
    assert fixed == pytest.approx(1.0) and per_image == pytest.approx(2.0)
    assert jobs._per_image([[2, 5.0]]) is None  # one batch size gives no slope


# -- the training step it times ----------------------------------------------------------------------------
def test_blocky_labels_cover_sizes_that_are_not_multiples_of_the_block():
    labels = blocky_labels(2, 19, 286)
    assert labels.shape == (2, 286, 286) and 0 <= labels.min() and labels.max() < 19
    assert torch.equal(labels[:, :16, :16], labels[:, :1, :1].expand(2, 16, 16))  # one class per block


def test_training_step_is_the_trainers_and_moves_both_networks(tmp_path):
    with toy_run(tmp_path) as run:
        real, one_hot = synthetic_batch(run, 2)
        assert real.shape == (2, 3, 64, 64) and one_hot.shape == (2, 19, 64, 64)
        before = {k: v.clone() for k, v in run.generator.state_dict().items()}
        disc_before = {k: v.clone() for k, v in run.discriminator.state_dict().items()}
        timing = time_step(TrainingStep(run, real, one_hot), warmup=0, repeats=1)
        assert timing["finite"] and timing["images_per_s"] > 0 and timing["peak_gib"] >= timing["base_gib"] > 0
        assert any(not torch.equal(v, before[k]) for k, v in run.generator.state_dict().items())
        assert any(not torch.equal(v, disc_before[k]) for k, v in run.discriminator.state_dict().items())
        assert run.perceptual_kind in ("vgg19", "l1 (VGG19 weights unavailable)")  # never downloads


@pytest.mark.slow
def test_the_vgg19_terms_cost_is_timed_with_random_weights_never_downloaded(tmp_path):
    """Without cached VGG19 weights the trainer uses the stated L1 fallback; the timing run can put an
    untrained VGG19 in its place, for the term's cost (the paper's recipe), and says so."""
    from ca2sis_lib.training.step_timer import perceptual_in_use

    with toy_run(tmp_path / "vgg", untrained_vgg=True) as run:
        assert run.perceptual is not None and not run.perceptual.pretrained and run.l1_weight == run.cfg.lambda_l1
        assert perceptual_in_use(run) == "vgg19 with untrained weights (its cost only)"
        losses = TrainingStep(run, *synthetic_batch(run, 1))()
        assert "g_vgg" in losses and "g_l1" not in losses and torch.isfinite(losses["g_vgg"])


def test_a_step_that_runs_out_of_memory_leaves_the_next_one_working(tmp_path, jobs, monkeypatch):
    """What the cap search does after a step that ran out of memory half way (on CUDA): no gradient is
    left behind, and the gradient scaler starts afresh at its scale (one that has stepped an optimiser
    refuses another step before its update: "step() has already been called since the last update()")."""
    from ca2sis_lib.training import step_timer

    with toy_run(tmp_path) as run:
        run.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)  # as fp16 training has it
        trial = jobs.CapTrial(run)

        def out_of_memory(*args, **kwargs):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated after the generator's step)")

        monkeypatch.setattr(step_timer, "discriminator_step", out_of_memory)
        assert trial(1) == (False, None)
        assert all(p.grad is None for p in [*run.generator.parameters(), *run.discriminator.parameters()])
        assert run.scaler.get_scale() == 1024.0
        monkeypatch.undo()
        assert trial(1)[0]
        trial.set_cap(-1.0)  # on the CPU a cap is compared with what the step added to the peak RSS
        fits, used = trial(1)
        assert not fits and used is not None


def test_peak_memory_on_the_cpu_is_the_peak_since_reset():
    peak = PeakMemory(torch.device("cpu"))
    peak.reset()
    block = torch.ones(64, 2**20)  # 256 MiB, touched
    reading = peak.read()
    del block
    assert reading["peak_gib"] - reading["base_gib"] > 0.2


@NEEDS_CUDA
def test_training_step_and_cap_search_on_cuda(tmp_path, jobs):
    with toy_run(tmp_path, device="cuda", amp="fp16") as run:
        timing = time_step(TrainingStep(run, *synthetic_batch(run, 2)), warmup=1, repeats=2)
        assert timing["finite"] and timing["peak_gib"] > 0
        trial = jobs.CapTrial(run)
        row = jobs.search_cap(trial, 2.0, None, limit=64)
        assert row["largest_batch"] >= 1 and row["first_failing"] in (None, row["largest_batch"] + 1)
        torch.cuda.set_per_process_memory_fraction(1.0)


# -- what it installs, from where --------------------------------------------------------------------------
def test_requirements_are_the_projects_without_torch(check):
    names = [check._name(r) for r in check.requirements()]
    assert {"einops", "torchmetrics", "papermill", "ipykernel", "nbformat"} <= set(names)
    assert not {"torch", "torchvision", "jupyterlab"} & set(names)


def test_missing_names_what_is_absent_or_out_of_range(check):
    assert check.missing(["pytest>=1", "no-such-distribution-ca2sis>=1", "pytest<1"]) == [
        "no-such-distribution-ca2sis>=1", "pytest<1"]


def test_wheels_are_downloaded_for_python_312_on_manylinux_without_the_heavy_ones(check, tmp_path):
    with_deps, without_deps = check.download_commands(tmp_path)
    for command in (with_deps, without_deps):
        assert command[:4] == [sys.executable, "-m", "pip", "download"]
        assert "--python-version" in command and command[command.index("--python-version") + 1] == "3.12"
        assert "--only-binary=:all:" in command and "manylinux2014_x86_64" in command
        assert not {check._name(a) for a in command if not a.startswith("-")} & set(check.HEAVY)
    assert "--no-deps" in without_deps and {check._name(a) for a in without_deps[-2:]} == {"torchmetrics", "seaborn"}
    assert "--no-deps" not in with_deps and "papermill>=2.5" in with_deps


def test_installing_uses_no_index_and_keeps_torch(check, tmp_path):
    command = check.install_command(["einops>=0.7"], tmp_path / "w", tmp_path / "pins.txt")
    assert command[-1] == "einops>=0.7" and "--no-index" in command
    assert command[command.index("--find-links") + 1] == str(tmp_path / "w")
    assert command[command.index("--constraint") + 1] == str(tmp_path / "pins.txt")
    assert any(pin.startswith("torch==") for pin in check.pins())


# -- the recommendation table ------------------------------------------------------------------------------
def _results(**device):
    def speed(variant, amp, batch, ips, memory=False):
        return {"variant": variant, "amp": amp, "channels_last": False, "memory_mode": memory, "batch": batch,
                "images_per_s": ips, "finite": True, "median_s": batch / ips}

    rows = [speed("fp32", "none", b, 10.0 * b ** 0.5) for b in (1, 2, 4, 8)]
    rows += [speed("bf16", "bf16", b, 30.0 * b ** 0.5) for b in (1, 2, 4, 8)]
    rows += [speed("fp16", "fp16", b, 25.0 * b ** 0.5) for b in (1, 2, 4, 8)]
    rows.append({**speed("fp16", "fp16", 8, 99.0), "finite": False})  # an overflowing row is never chosen
    rows += [{**speed("bf16_vgg19_cost", "bf16", b, 20.0 * b ** 0.5), "untrained_vgg": True} for b in (1, 8)]

    def cap(variant, amp, gib, largest):
        return {"variant": variant, "amp": amp, "cap_gib": gib, "largest_batch": largest, "memory_mode": False}

    caps = [cap("fp32", "none", 15, 2), cap("fp16", "fp16", 15, 3), cap("bf16", "bf16", 15, 3),
            cap("fp32", "none", 24, 4), cap("bf16", "bf16", 24, 6), cap("fp16", "fp16", 24, 6),
            cap("bf16", "bf16", 40, 0), cap("fp32", "none", 80, 30), cap("bf16", "bf16", 80, 60)]
    return {"dry_run": False, "started": "2027-01-02T10:00:00", "perceptual": "l1 (VGG19 weights unavailable)",
            "device": {"type": "cuda", "name": "NVIDIA H100 80GB HBM3", "memory_gib": 79.2, **device},
            "sections": {"speed": {"rows": rows}, "caps": {"rows": caps}}}


def test_each_class_gets_the_fastest_measured_setting_that_fits_it():
    results = _results()
    t4, l4, a100_40, big = (recs.recommend(results, gpu) for gpu in recs.GPU_CLASSES)
    assert (t4["variant"], t4["batch"], t4["largest_batch"]) == ("fp16", 2, 3)  # no bf16 on a T4
    assert (l4["variant"], l4["batch"]) == ("bf16", 4)  # 6 fit, 4 is the largest batch measured below 6
    assert a100_40 is None  # the only row at 40 GiB fits nothing
    assert (big["variant"], big["batch"]) == ("bf16", 8)


def test_the_table_is_rendered_from_the_results_with_the_hours_of_the_papers_schedule():
    text = recs.render(_results())
    images = 1_400_000 * 2
    assert recs.paper_schedule_images() == images
    hours = images / (30.0 * 8 ** 0.5) / 3600
    assert f"| A100 / H100 80 GB (80 GiB) | bf16 autocast | 8 | 60 | 84.9 | {hours:.1f} |" in text
    assert "| T4 (Colab's free GPU) (15 GiB, no bf16) | fp16 autocast + GradScaler | 2 | 3 |" in text
    assert "| A100 40 GB (Colab) (40 GiB) | nothing measured fitted |" in text
    assert "emulated" in text and "not that card's" in text
    vgg_hours = images / (20.0 * 8 ** 0.5) / 3600
    assert (f"(its cost, not its values: its weights could not be had here), bf16 autocast at batch 8 ran at 56.6 "
            f"images/s on the NVIDIA H100 80GB HBM3: {vgg_hours:.1f} hours") in text


def test_without_a_gpu_run_the_table_says_only_that(tmp_path):
    assert recs.gpu_recommendations(tmp_path / "absent.json") == "not measured on a GPU yet"
    dry = tmp_path / "dry.json"
    dry.write_text(json.dumps({**_results(), "dry_run": True}))
    assert recs.gpu_recommendations(dry) == "not measured on a GPU yet"
    cpu = tmp_path / "cpu.json"
    cpu.write_text(json.dumps(_results(type="cpu")))
    assert recs.gpu_recommendations(cpu) == "not measured on a GPU yet"


def test_the_docs_table_is_what_the_results_file_renders(check):
    """docs/performance.md quotes the table between its markers; `--render-doc` rewrites it."""
    text = check.DOC.read_text()
    begin, end = check.MARKERS
    quoted = text.split(begin, 1)[1].split(end, 1)[0].strip("\n")
    assert quoted == recs.gpu_recommendations()  # "not measured on a GPU yet" until gpu_check.json exists
    assert check.doc_with_table(text, quoted) == text
    assert check.render_doc(check_only=True, results=recs.RESULTS_FILE) == 0


def test_the_docs_state_the_budgets_the_command_uses(check):
    text = check.DOC.read_text().split("## On a GPU", 1)[1].split("### Recommended settings", 1)[0]
    stated = {name: float(seconds) for name, seconds in re.findall(r"^\| (\w+) \| (\d+) s \|", text, re.M)}
    assert stated == check.GPU_PLAN["budgets_s"]
    assert sum(stated.values()) <= check.GPU_PLAN["total_budget_s"] == 8 * 60


def test_bad_arguments_are_refused_with_the_fix(check, capsys):
    with pytest.raises(SystemExit):
        check.parse_args([])
    assert "give OUTDIR" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        check.parse_args(["out", "--budget", "speed=fast"])
    assert "SECTION=SECONDS" in capsys.readouterr().err


# -- the dry run ---------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.notebook
def test_dry_run_runs_every_section_on_the_cpu(tmp_path, check):
    """`scripts/gpu_check.py OUTDIR --dry-run`: every section's code at toy sizes, its report, no GPU figures.
    About 1.5 minutes on two idle cores (its notebook runs beside the other sections)."""
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), str(out), "--dry-run", "--work",
               str(tmp_path / "work")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "gpu_check.json").read_text())
    sections = results["sections"]
    assert results["dry_run"] and results["device"]["type"] == "cpu"
    assert {name: s["status"] for name, s in sections.items()} == dict.fromkeys(check.SECTIONS, "done")
    plan = check.DRY_PLAN
    speed = {(r["variant"], r["batch"]): r for r in sections["speed"]["rows"]}
    assert set(speed) == {(v, b) for v in plan["speed_variants"] for b in plan["batches"]}
    assert all(r["finite"] and r["images_per_s"] > 0 and r["classes"] == 19 for r in speed.values())
    assert speed["memory_fp16", 1]["memory_mode"] and speed["memory_fp16", 1]["amp"] == "fp16"
    caps = sections["caps"]["rows"]
    assert [r["cap_gib"] for r in caps] == plan["caps_gib"]
    for row in caps:
        assert 0 <= row["largest_batch"] <= plan["batch_limit"]
        assert row["first_failing"] in (None, row["largest_batch"] + 1)
    (compiled,) = sections["compile"]["rows"]
    assert compiled["compiled"] and compiled["dynamo_disabled"] and "compile_s" in compiled
    resume = {r["mode"]: r for r in sections["resume"]["rows"]}
    assert set(resume) == {"default", "deterministic"}
    for row in resume.values():  # the CPU is exact: resumed weights are bit-identical, as tests/test_train.py checks
        assert all(row[part]["resumed_identical"] for part in ("generator", "discriminator", "ema")), row
    (notebook,) = sections["notebooks"]["rows"]
    assert notebook["metrics"]["resume_exact"] and notebook["metrics"]["steps_done"] == 4
    assert (out / "03_smoke.ipynb").is_file()
    report = (out / "gpu_check.md").read_text()
    assert "DRY RUN" in report and report.rstrip().endswith("not measured on a GPU yet")
    assert recs.gpu_recommendations(out / "gpu_check.json") == "not measured on a GPU yet"

    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode != 0 and "exists from an earlier run" in again.stderr  # nothing is overwritten
    rerun = subprocess.run(command + ["--only", "env"], capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    merged = json.loads((out / "gpu_check.json").read_text())
    assert merged["sections"]["speed"] == sections["speed"]  # the other sections are kept


def test_no_gpu_and_no_dry_run_stops_with_the_fix(check):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the check would run")
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), out, "--only", "env", "--budget", "env=300"]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              timeout=300)
        assert done.returncode == 1
        assert "env: exit 1: no CUDA device" in done.stdout and "pass --dry-run" in done.stdout
        assert "no CUDA device" in Path(out, "gpu_check.log").read_text()
