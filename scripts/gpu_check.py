"""The GPU path, measured by one command: paper-preset training speed and memory, what fits smaller
cards, notebook 03 on CUDA, and an exact resume (docs/performance.md#on-a-gpu).

    python scripts/gpu_check.py OUTDIR --wheels .whl      # on a CUDA machine: about 8 minutes
    python scripts/gpu_check.py OUTDIR --dry-run          # the same code on the CPU at toy sizes
    python scripts/gpu_check.py OUTDIR --only caps        # rerun sections into an earlier OUTDIR
    python scripts/gpu_check.py --fill-wheels .whl        # with PyPI: the wheels a bare machine lacks
    python scripts/gpu_check.py --render-doc [--check]    # docs/performance.md's table from the results

Sections, in order, each with its own time budget (a section that overruns is stopped and the
report says so; what it measured until then is kept): env (device and versions), speed (images/s
and peak memory of a full training step: generator and discriminator, at batch 1, 2, 4, 8, in
fp32, bf16, fp16 with the gradient scaler, channels_last and memory mode), caps (the largest batch
under 15, 24, 40 and 80 GiB: a memory emulation, not those cards' speed), resume (a stopped and
resumed run against an uninterrupted one), notebooks (notebook 03 with papermill: the paper preset
on toy data for a few steps, and the toy preset at its full 2000 steps, side by side) and compile
(the bf16 step under torch.compile, compile time apart). Each job runs in its own process
(scripts/gpu_check_jobs.py); this one never touches the GPU.

OUTDIR receives gpu_check.json, gpu_check.md, gpu_check.log and the executed notebooks (five files);
run folders and checkpoints go to a scratch folder (--work). The JSON and the markdown are written
after every section, so a command cut short keeps the sections it finished.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # ca2sis_lib from this checkout, installed or not (a bare CUDA machine)
    sys.path.insert(0, str(ROOT))
JOBS = ROOT / "scripts" / "gpu_check_jobs.py"
DOC = ROOT / "docs" / "performance.md"
RESULTS = ROOT / "benchmarks" / "results" / "gpu_check.json"
MARKERS = ("<!-- gpu-recommendations:begin -->", "<!-- gpu-recommendations:end -->")
CARRY_LIMIT_MIB = 64  # the working tree and the carried wheels together

# configuration name -> what it switches (TrainConfig keys; gradient_checkpointing is the model's memory mode),
# in the order they are measured: what the recommendations need first, in case a section runs out of time
VARIANTS: dict[str, dict[str, Any]] = {
    "fp32": {},
    "bf16": {"amp": "bf16"},
    "fp16": {"amp": "fp16"},
    "memory_fp16": {"amp": "fp16", "gradient_checkpointing": True},
    "memory_bf16": {"amp": "bf16", "gradient_checkpointing": True},
    # the paper's VGG19 term costs time even when its weights cannot be had: timed with random weights
    "bf16_vgg19_cost": {"amp": "bf16", "untrained_vgg": True},
    "channels_last": {"channels_last": True},
    "bf16_channels_last": {"amp": "bf16", "channels_last": True},
}
CAP_VARIANTS = ("bf16", "fp16", "memory_fp16", "fp32")  # the T4 (no bf16) needs fp16 and perhaps memory mode
COMPILE_VARIANT = "bf16"

# the paper preset at 256² on a CUDA device; the dry run: the same preset's code on a toy model on the CPU
GPU_PLAN: dict[str, Any] = {
    "device": "cuda", "preset": "paper", "model_overrides": {}, "train_overrides": {}, "variants": VARIANTS,
    "speed_variants": list(VARIANTS), "batches": [1, 2, 4, 8], "warmup": 2, "repeats": 5, "max_timed_s": 2.0,
    "cap_variants": list(CAP_VARIANTS), "caps_gib": [15, 24, 40, 80], "batch_limit": 512,
    "compile_variant": COMPILE_VARIANT, "compile_backend": "inductor", "compile_batches": [2, 8, 4, 1],
    "resume": {"preset": "toy-ca2sis", "steps": 6, "overrides": {"toy_samples": 64, "decay_start": None}},
    "notebooks": {"03_paper_short": {"PRESET": "paper", "DATA": "toy", "STEPS": 20, "CHUNK": 10, "AMP": "bf16"},
                  "03_toy_full": {"PRESET": "toy-ca2sis", "DATA": "toy", "STEPS": 2000, "CHUNK": 1000}},
    "cell_timeout_s": 600, "threads": None, "total_budget_s": 480,  # the device allows 10 minutes a command
    "budgets_s": {"env": 25, "speed": 100, "caps": 90, "resume": 30, "notebooks": 175, "compile": 60},
}
TOY_MODEL = {"model_preset": "tiny", "model_overrides": {"num_classes": 19, "input_channels": 64, "style_dim": 16,
                                                         "embed_resolution": 16, "ff_mult": 1, "mapping_hidden": 32}}
DRY_PLAN: dict[str, Any] = GPU_PLAN | {
    "device": "cpu", "model_overrides": TOY_MODEL["model_overrides"], "train_overrides": {"model_preset": "tiny"},
    # fp16 exercises the gradient scaler and memory mode the checkpointing (both slow on a CPU without fp16 units)
    "speed_variants": ["fp32", "memory_fp16"], "batches": [1, 2], "warmup": 0, "repeats": 1, "max_timed_s": 1.0,
    "cap_variants": ["fp32"], "caps_gib": [0.02, 0.2], "batch_limit": 4,
    # dynamo's tracing of even the toy model costs about a minute of CPU: the dry run calls torch.compile
    # with dynamo disabled (the same calls, no graph), the GPU run compiles with inductor
    "compile_variant": "fp32", "compile_backend": "eager", "dynamo_disabled": True, "compile_batches": [1],
    "resume": {"preset": "toy-ca2sis", "steps": 2,
               "overrides": {"toy_samples": 4, "batch_size": 2, "decay_start": None, "model_overrides": {
                   k: v for k, v in TOY_MODEL["model_overrides"].items() if k != "num_classes"}}},
    "notebooks": {"03_smoke": {"SMOKE": True, "PRESET": "paper", "DATA": "toy"}}, "background": ["notebooks"],
    "cell_timeout_s": 900, "threads": 1, "total_budget_s": 1200,  # a shared CPU: the budgets are only a safety net
    "budgets_s": {"env": 120, "speed": 300, "caps": 300, "resume": 300, "notebooks": 1200, "compile": 120},
}
SECTIONS = ("env", "speed", "caps", "resume", "notebooks", "compile")


# -- what the project needs beyond torch, and installing it from a folder of wheels ---------------------
def requirements() -> list[str]:
    """pyproject.toml's dependencies without torch and torchvision (the machine's own are used), and
    what executing a notebook needs (the notebooks extra without JupyterLab)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    notebook = [r for r in project["optional-dependencies"]["notebooks"] if not r.startswith("jupyterlab")]
    return [r for r in project["dependencies"] if _name(r) not in ("torch", "torchvision")] + notebook


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def missing(requirements: list[str]) -> list[str]:
    """The requirements not installed, or installed at a version outside their range."""
    from packaging.requirements import Requirement

    absent = []
    for text in requirements:
        requirement = Requirement(text)
        try:
            if not requirement.specifier.contains(importlib.metadata.version(requirement.name), prereleases=True):
                absent.append(text)
        except importlib.metadata.PackageNotFoundError:
            absent.append(text)
    return absent


def pins() -> list[str]:
    """name==version of what must not move when wheels are installed: torch and what it came with."""
    out = []
    for name in ("torch", "torchvision", "numpy", "pillow", "triton"):
        try:
            out.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def install_command(absent: list[str], wheels: Path, constraints: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheels), "--constraint",
            str(constraints), "--no-cache-dir", "--disable-pip-version-check", "--quiet", *absent]


def ensure_requirements(wheels: Path | None, log: Any) -> dict[str, Any]:
    """Install what is missing from ``wheels`` (pip, no index: no network), or stop naming it."""
    absent = missing(requirements())
    record: dict[str, Any] = {"missing": absent, "installed_from": str(wheels) if wheels and absent else None}
    if not absent:
        return record
    if wheels is None or not wheels.is_dir():
        raise SystemExit(f"missing on this machine: {', '.join(absent)}. Give a folder of wheels: --wheels DIR "
                         f"(fill it where PyPI is reachable: python scripts/gpu_check.py --fill-wheels DIR; "
                         f"docs/performance.md#on-a-gpu)")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(pins()) + "\n")
    done = subprocess.run(install_command(absent, wheels, Path(handle.name)), capture_output=True, text=True)
    log.write(f"$ pip install (from {wheels}): {' '.join(absent)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        raise SystemExit(f"pip could not install {', '.join(absent)} from {wheels}:\n{done.stderr[-2000:]}\n"
                         "Fill the folder again with --fill-wheels (Python 3.12, manylinux x86-64).")
    still = missing(requirements())
    if still:
        raise SystemExit(f"after installing from {wheels}, still missing: {', '.join(still)}")
    return record


# the wheels a CUDA image with torch, torchvision, numpy, pillow, matplotlib and pandas lacks; together
# with those six the folder would outgrow what may travel with the working tree
HEAVY = ("torch", "torchvision", "numpy", "pillow", "matplotlib", "pandas")
WITHOUT_DEPS = ("torchmetrics", "seaborn")  # their own needs are torch, numpy, pandas, matplotlib: HEAVY
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
# papermill needs aiohttp on Python 3.12 only, and pip download judges such conditions by the Python running it
FOR_PYTHON_312 = ("aiohttp>=3.9",)


def download_commands(folder: Path) -> list[list[str]]:
    """``pip download`` for Python 3.12 on manylinux x86-64: everything :func:`requirements` lists but
    HEAVY, with dependencies, except WITHOUT_DEPS (whose dependencies are HEAVY); lightning-utilities
    (torchmetrics's one light need) and FOR_PYTHON_312 with theirs."""
    target = ["--dest", str(folder), "--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:",
              *[arg for platform in PLATFORMS for arg in ("--platform", platform)], "--disable-pip-version-check"]
    wanted = [r for r in requirements() if _name(r) not in HEAVY]
    light = [r for r in wanted if _name(r) not in WITHOUT_DEPS] + ["lightning-utilities", *FOR_PYTHON_312]
    heavy_deps = [r for r in wanted if _name(r) in WITHOUT_DEPS]
    pip = [sys.executable, "-m", "pip", "download"]
    return [pip + target + light, pip + target + ["--no-deps"] + heavy_deps]


def tree_bytes() -> int:
    """Bytes of the files git tracks: what travels with the working tree beside the carried wheels."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True).stdout.split("\0")
    return sum((ROOT / n).stat().st_size for n in names if n and (ROOT / n).is_file())


def fill_wheels(folder: Path) -> int:
    for command in download_commands(folder):
        print("$", " ".join(command), flush=True)
        if subprocess.run(command).returncode != 0:
            return 1
    size, tree = sum(p.stat().st_size for p in folder.glob("*.whl")), tree_bytes()
    mib = 2**20
    print(f"{folder}: {len(list(folder.glob('*.whl')))} wheels, {size / mib:.1f} MiB; the tracked tree "
          f"{tree / mib:.1f} MiB; together {(size + tree) / mib:.1f} MiB of the {CARRY_LIMIT_MIB} MiB that may travel")
    return 0 if size + tree <= CARRY_LIMIT_MIB * mib else 1


# -- running the sections ------------------------------------------------------------------------------
def section_jobs(name: str, plan: dict[str, Any], results: dict[str, Any], outdir: Path
                 ) -> tuple[list[dict[str, Any]], bool]:
    """(the jobs of section ``name``, whether they run side by side)."""
    if name == "speed":
        return [{"job": "speed", "args": {"variants": plan["speed_variants"]}}], False
    if name == "caps":
        speed = results.get("sections", {}).get("speed", {}).get("rows", [])
        peaks: dict[str, list[list[float]]] = {}
        for row in speed:
            if "peak_gib" in row:  # the cap compares what a CPU step adds; a CUDA step's whole allocation
                used = row["peak_gib"] - (row["base_gib"] if plan["device"] == "cpu" else 0)
                peaks.setdefault(row["variant"], []).append([row["batch"], used])
        return [{"job": "caps", "args": {"variants": plan["cap_variants"], "peaks": peaks}}], False
    if name == "resume":
        deterministic = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}  # cuBLAS's condition for deterministic results
        return [{"job": "resume", "args": {"mode": "default"}},
                {"job": "resume", "args": {"mode": "deterministic"}, "env": deterministic}], False
    if name == "notebooks":
        return [{"job": "notebook", "args": {"name": n, "parameters": p, "outdir": str(outdir)}}
                for n, p in plan["notebooks"].items()], True
    if name == "compile":
        return [{"job": "compile", "args": {"variant": plan["compile_variant"]}}], False
    return [{"job": "env"}], False


def child_env(extra: dict[str, str], offline: bool) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    if offline:  # a download (VGG19 for the paper preset) fails at once, not after waiting on an absent network
        for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env[key] = "http://127.0.0.1:9"
    return env


class SectionRun:
    """A section's jobs as processes: started in order (each after the last) or side by side, each
    stopped with what it started once the section's budget is spent; their ``@@row`` lines collected."""

    def __init__(self, name: str, plan: dict[str, Any], results: dict[str, Any], outdir: Path, work: Path,
                 budget: float, offline: bool) -> None:
        self.name, self.plan, self.work, self.offline = name, plan, work, offline
        self.jobs, self.parallel = section_jobs(name, plan, results, outdir)
        self.started, self.deadline = time.monotonic(), time.monotonic() + budget
        self.record: dict[str, Any] = {"budget_s": round(budget), "rows": [], "status": "done", "errors": [],
                                       "cpu_s": 0.0}
        self.running = [self._start(i, job) for i, job in enumerate(self.jobs)] if self.parallel else []

    def _start(self, number: int, job: dict[str, Any]) -> tuple[subprocess.Popen, Path, dict[str, Any]]:
        output = self.work / f"{self.name}_{number}.log"
        spec = {"job": job["job"], "plan": self.plan, "work": str(self.work / self.name), "args": job.get("args", {})}
        with output.open("w") as handle:
            process = subprocess.Popen([sys.executable, str(JOBS), json.dumps(spec)], stdout=handle,
                                       stderr=subprocess.STDOUT, env=child_env(job.get("env", {}), self.offline),
                                       start_new_session=True, cwd=str(self.work))
        return process, output, job

    def finish(self, log: Any) -> dict[str, Any]:
        running = self.running or [self._start(i, job) for i, job in enumerate(self.jobs[:1])]
        queue = [] if self.parallel else list(enumerate(self.jobs))[1:]
        while running:
            process, output, job = running.pop(0)
            code, cpu = wait_job(process, self.deadline)
            self._collect(output, job, code, cpu, log)
            if not running and queue:
                running.append(self._start(*queue.pop(0)))
        self.record["seconds"] = round(time.monotonic() - self.started, 1)
        self.record["cpu_s"] = round(self.record["cpu_s"], 1)
        log.flush()
        return self.record

    def _collect(self, output: Path, job: dict[str, Any], code: int | None, cpu: float, log: Any) -> None:
        record, text = self.record, output.read_text(errors="replace")
        log.write(f"\n===== {self.name}: {job['job']} {json.dumps(job.get('args', {}))[:300]}\n{text}")
        record["rows"] += [json.loads(line[6:]) for line in text.splitlines() if line.startswith("@@row ")]
        record["cpu_s"] += cpu
        what = f"{job['job']} {job.get('args', {}).get('name', '')}".strip()
        tail = " | ".join([line for line in text.splitlines() if line.strip() and not line.startswith("@@row ")][-3:])
        if code is None:
            record["status"] = "stopped"
            record["errors"].append(f"{what}: stopped at the section's budget of {record['budget_s']} s; last output: "
                                    f"{tail}")
        elif code != 0:
            record["status"] = "failed" if record["status"] == "done" else record["status"]
            record["errors"].append(f"{what}: exit {code}: {tail}")


def wait_job(process: subprocess.Popen, deadline: float) -> tuple[int | None, float]:
    """(exit code, or None when stopped at ``deadline``; CPU seconds of the job and the processes it
    waited for). A job stopped is killed with its whole process group."""
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)  # the job and what it started in its group
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = -signal.SIGKILL
            return None, usage.ru_utime + usage.ru_stime
        time.sleep(0.2)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime


def check(args: argparse.Namespace) -> int:
    """Run the sections (all, or --only) into OUTDIR and write the report after each."""
    outdir, plan = Path(args.outdir), DRY_PLAN if args.dry_run else GPU_PLAN
    report_path = outdir / "gpu_check.json"
    if report_path.exists() and not args.only:
        raise SystemExit(f"{report_path} exists from an earlier run: give another OUTDIR, or --only SECTION ... "
                         "to rerun sections into it")
    outdir.mkdir(parents=True, exist_ok=True)
    results = json.loads(report_path.read_text()) if report_path.exists() else {}
    if results and bool(results.get("dry_run")) != args.dry_run:
        raise SystemExit(f"{report_path} holds a {'dry' if results.get('dry_run') else 'GPU'} run: rerun sections "
                         "into an OUTDIR of the same kind")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with (outdir / "gpu_check.log").open("a") as log:
        requirements_record = ensure_requirements(Path(args.wheels) if args.wheels else None, log)
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        results |= {"schema": 1, "dry_run": args.dry_run, "started": results.get("started") or now, "plan": plan}
        results.setdefault("sections", {})
        results.setdefault("runs", []).append({"command": " ".join(sys.argv), "started": now,
                                               "sections": args.only or list(SECTIONS),
                                               "requirements": requirements_record})
        budgets = plan["budgets_s"] | dict(args.budget or [])
        names = args.only or list(SECTIONS)
        later = [n for n in plan.get("background", []) if n in names]  # a dry run's notebook, on the other core
        background: dict[str, SectionRun] = {}
        for name in [n for n in names if n not in later] + later:
            run_seconds = results["runs"][-1]
            left = plan["total_budget_s"] - (time.monotonic() - started)
            if name != "env" and name not in background and left < 10:
                results["sections"][name] = {"status": "skipped", "errors": ["the total budget was spent"], "rows": []}
                continue
            print(f"[{time.monotonic() - started:5.0f} s] {name} (budget {min(budgets[name], left):.0f} s)", flush=True)
            section = (background.get(name) or SectionRun(name, plan, results, outdir, work,
                                                          min(budgets[name], max(left, 10)),
                                                          not args.allow_downloads)).finish(log)
            results["sections"][name] = section
            if name == "env" and section["rows"]:
                results["device"] = section["rows"][0]
            if name == "speed" and section["rows"]:
                results["perceptual"] = section["rows"][0].get("perceptual")
            run_seconds["seconds"] = round(time.monotonic() - started, 1)
            write_report(results, outdir)
            print(f"        {section['status']} in {section['seconds']} s ({section['cpu_s']} CPU s)" +
                  "".join(f"\n        {e}" for e in section["errors"]), flush=True)
            if name == "env" and section["status"] != "done":
                print("stopped: the environment check failed (see gpu_check.log)", file=sys.stderr)
                return 1
            if later and not background and name not in later:  # the first section is done: start them
                background = {n: SectionRun(n, plan, results, outdir, work, budgets[n], not args.allow_downloads)
                              for n in later}
    if not args.keep_work and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    failed = [n for n, s in results["sections"].items() if s["status"] != "done"]
    print(f"wrote {outdir / 'gpu_check.json'} and gpu_check.md in {results['runs'][-1].get('seconds', 0)} s"
          + (f"; not done: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


# -- the report ------------------------------------------------------------------------------------------
def write_report(results: dict[str, Any], outdir: Path) -> None:
    (outdir / "gpu_check.json").write_text(json.dumps(results, indent=1, default=str))
    (outdir / "gpu_check.md").write_text(markdown(results))


def _f(value: Any, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(results: dict[str, Any]) -> str:
    from ca2sis_lib.gpu_recommendations import precision_label, render

    device, sections = results.get("device", {}), results.get("sections", {})
    what = "DRY RUN on the CPU at toy sizes (no GPU figures)" if results.get("dry_run") else "GPU check"
    lines = [f"# {what}: {device.get('name', '?')}", "",
             *[f"`{r['command']}`, started {r['started']}, {r.get('seconds', '?')} s; installed from wheels: "
               f"{', '.join(r['requirements']['missing']) or 'nothing'}." for r in results.get("runs", [])],
             "", f"Device: {json.dumps(device)}", "",
             "| section | status | seconds | budget s | notes |", "|---|---|---:|---:|---|"]
    lines += [f"| {n} | {s['status']} | {s.get('seconds', '')} | {s.get('budget_s', '')} | "
              f"{'; '.join(s.get('errors', []))} |" for n, s in sections.items()]
    speed = sections.get("speed", {}).get("rows", []) + sections.get("compile", {}).get("rows", [])
    if speed:
        lines += ["", "## Speed: one full training step (G step with its D call, EMA, D step)", "",
                  "| configuration | batch | ms / step | images/s | peak GiB | compile s | finite |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for r in speed:
            ms, finite = r["median_s"] * 1000 if "median_s" in r else None, r.get("finite", r.get("error", ""))
            lines.append(f"| {precision_label(r)} | {r['batch']} | {_f(ms, 1)} | {_f(r.get('images_per_s'), 1)} | "
                         f"{_f(r.get('peak_gib'))} | {_f(r.get('compile_s'), 1)} | {finite} |")
    caps = sections.get("caps", {}).get("rows", [])
    if caps:
        lines += ["", "## Memory caps (emulated on this device; not those cards' speed)", "",
                  "| configuration | cap GiB | allocator limit GiB | largest batch | smallest that failed |",
                  "|---|---:|---:|---:|---:|"]
        for r in caps:
            whole = " (whole card)" if r.get("whole_card") else ""
            failed = r["first_failing"] or f"none up to {r['largest_batch']}"
            lines.append(f"| {precision_label(r)} | {r['cap_gib']} | {_f(r['limit_gib'])}{whole} | "
                         f"{r['largest_batch']} | {failed} |")
    for row in sections.get("resume", {}).get("rows", []):
        parts = {p: row[p] for p in ("generator", "discriminator", "ema") if p in row}
        lines += ["", f"## Resume ({row['mode']}): {row['preset']}, {row['steps']} steps, stopped at "
                  f"{row['stopped_at']} and resumed", "", "| weights | resumed identical | max abs diff | "
                  "second straight run identical | max abs diff |", "|---|---|---:|---|---:|"]
        lines += [f"| {p} | {v['resumed_identical']} | {v['resumed_max_abs_diff']:.3g} | {v['rerun_identical']} | "
                  f"{v['rerun_max_abs_diff']:.3g} |" for p, v in parts.items()]
        if row.get("nondeterministic_ops"):
            lines += ["", "Ops without a deterministic implementation: " + "; ".join(row["nondeterministic_ops"])]
    for row in sections.get("notebooks", {}).get("rows", []):
        lines += ["", f"## Notebook 03: {row['name']} ({row['seconds']:.0f} s)", "",
                  "```", json.dumps({k: v for k, v in row["parameters"].items() if k.isupper()}),
                  json.dumps(row["metrics"], indent=1, default=str), "```"]
    lines += ["", "## Recommendations", "", render(results), ""]
    return "\n".join(lines)


# -- docs/performance.md ---------------------------------------------------------------------------------
def doc_with_table(text: str, table: str) -> str:
    begin, end = MARKERS
    if begin not in text or end not in text:
        raise SystemExit(f"{DOC} has no {begin} ... {end} block for the table")
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{table}\n{end}{rest.split(end, 1)[1]}"


def render_doc(check_only: bool, results: Path) -> int:
    from ca2sis_lib.gpu_recommendations import gpu_recommendations

    text = DOC.read_text()
    new = doc_with_table(text, gpu_recommendations(results))
    if check_only:
        if new != text:
            print(f"{DOC.relative_to(ROOT)} differs from the table of {results}: run scripts/gpu_check.py --render-doc")
            return 1
        return 0
    DOC.write_text(new)
    print(f"wrote the table of {results} into {DOC.relative_to(ROOT)}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", nargs="?", help="where gpu_check.json, .md, .log and the notebooks go")
    parser.add_argument("--dry-run", action="store_true", help="the same code on the CPU at toy sizes")
    parser.add_argument("--wheels", help="folder of wheels to install missing packages from (pip, no index)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="rerun these sections into an earlier OUTDIR")
    parser.add_argument("--budget", nargs="+", type=_budget, metavar="SECTION=SECONDS", help="another time budget")
    parser.add_argument("--work", help="scratch folder for run folders and checkpoints (default: a temporary one)")
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary scratch folder")
    parser.add_argument("--allow-downloads", action="store_true",
                        help="let VGG19 be downloaded (by default the jobs run offline: the L1 fallback unless cached)")
    parser.add_argument("--fill-wheels", metavar="DIR", help="download the wheels a bare CUDA machine lacks into DIR")
    parser.add_argument("--render-doc", action="store_true", help="write the recommendation table into the doc")
    parser.add_argument("--check", action="store_true", help="with --render-doc: only say whether the doc is current")
    parser.add_argument("--results", default=str(RESULTS), help="the results file --render-doc reads")
    args = parser.parse_args(argv)
    if not (args.outdir or args.fill_wheels or args.render_doc):
        parser.error("give OUTDIR (or --fill-wheels DIR, or --render-doc)")
    return args


def _budget(text: str) -> tuple[str, float]:
    name, _, seconds = text.partition("=")
    if name not in SECTIONS or not seconds.replace(".", "", 1).isdigit():
        raise argparse.ArgumentTypeError(f"expected SECTION=SECONDS with SECTION one of {', '.join(SECTIONS)}, "
                                         f"got {text!r}")
    return name, float(seconds)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.fill_wheels:
        return fill_wheels(Path(args.fill_wheels))
    if args.render_doc:
        return render_doc(args.check, Path(args.results))
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
