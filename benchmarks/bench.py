"""Benchmarks: `make bench` (or `python benchmarks/bench.py [--quick] [--suite NAME ...]`).

Every suite runs its configurations in interleaved rounds (round r runs each configuration once,
each in its own process, so peak RSS is that configuration's alone) and reports each as a ratio to
the suite's baseline measured in the same round; the median over rounds is what the tables quote.
The paper suite's baseline is the authors' execution strategy run with our modules (every
transformer block checkpointed and recomputed in backward, the full attention matrix, no token
chunks). Reports record the machine (CPU flags, torch, threads), the load average before and
after and a measured matmul peak; numbers of two reports are compared only when their machine
fingerprints match (``--against``). ``--baseline-tree PATH`` adds the tiny GAN step of another
checkout (e.g. main) to the tiny suite, interleaved with ours.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from ca2sis_lib.losses import attention_loss

RESULTS = Path(__file__).resolve().parent / "results"


# -- what each configuration runs ------------------------------------------------------------
def _paper_batch(batch: int, classes: int = 19, size: int = 256):
    from ca2sis_lib.training.step_timer import blocky_labels

    image = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return image, blocky_labels(batch, classes, size)  # blocky masks, every class present


def authors_strategy(model: torch.nn.Module) -> None:
    """Run ``model`` (built with ``gradient_checkpointing=True``) as the authors' code does: every
    transformer block checkpointed whole (no token chunks), the feed-forward's plain autograd path."""
    from ca2sis_lib.models.blocks import FeedForward, TransformerBlock

    for module in model.modules():
        if isinstance(module, TransformerBlock):
            module.chunk_tokens = 0
        if isinstance(module, FeedForward):
            module.lean = False


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """Relative L2 error ||ours − reference|| / ||reference||."""
    return ((ours.float() - reference.float()).norm() / reference.float().norm()).item()


def make_generator_step(mode: str, batch: int):
    """Paper-preset CA²-SIS generator forward+backward.

    mode: default | memory | bf16 | reference | plain_ff (default with the feed-forward's plain
    autograd path, which keeps GELU(gate) and the GEGLU product for backward) | authors (the
    authors' execution strategy with our modules: per-block checkpointing, reference attention,
    no token chunks, plain feed-forward). A bf16 step carries ``step.rel_error``: the relative error
    of its output image against fp32 at the same weights."""
    from ca2sis_lib.models import CA2SIS, CA2SISConfig
    from ca2sis_lib.models.blocks import FeedForward

    config = CA2SISConfig.paper(gradient_checkpointing=mode in ("memory", "authors"),
                                attention_backend="reference" if mode in ("reference", "authors") else "sdpa")
    torch.manual_seed(0)
    model = CA2SIS(config).train()
    for module in model.modules():
        if isinstance(module, FeedForward):
            module.lean = mode != "plain_ff"
    if mode == "authors":
        authors_strategy(model)
    model.mapping.requires_grad_(False)
    image, labels = _paper_batch(batch)

    one_hot = model.prepare_mask(labels)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
            out = model(image, one_hot)
            loss = out.image.float().square().mean() + attention_loss(out.logits, one_hot)
        loss.backward()
        model.zero_grad(set_to_none=True)
        return out.image.detach().float()

    if mode == "bf16":
        def rel_error() -> float:
            with torch.no_grad():
                fp32 = model(image, one_hot).image
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return relative_error(model(image, one_hot).image, fp32)
        step.rel_error = rel_error
    return step


def make_spade_step(batch: int):
    from ca2sis_lib.models.spade import SPADEConfig, SPADEGenerator

    torch.manual_seed(0)
    model = SPADEGenerator(SPADEConfig.paper()).train()
    image, labels = _paper_batch(batch)

    def step():
        out = model(image, labels)
        out.image.square().mean().backward()
        model.zero_grad(set_to_none=True)

    return step


def make_tiny_gan_step(batch: int, channels_last: bool | None = None, amp: str = "none", **model_overrides):
    """One GAN step (G, EMA, D) of the toy-ca2sis recipe, through the trainer's own step functions.

    ``channels_last=None`` keeps the recipe's layout; ``amp="bf16"`` runs it under the trainer's
    autocast and carries ``step.rel_error`` (the generator's output against fp32, same weights)."""
    import atexit
    import shutil
    import tempfile

    from ca2sis_lib.masks import as_one_hot
    from ca2sis_lib.training.config import resolve_config
    from ca2sis_lib.training.run import setup_run
    from ca2sis_lib.training.step_timer import TrainingStep

    out_dir = tempfile.mkdtemp(prefix="ca2sis-bench-")  # the run is never saved; the folder goes at exit
    atexit.register(shutil.rmtree, out_dir, ignore_errors=True)
    overrides = {"batch_size": batch, "toy_samples": batch, "out_dir": out_dir, "model_overrides": model_overrides}
    if channels_last is not None:
        overrides["channels_last"] = channels_last
    if amp != "none":
        overrides["amp"] = amp
    cfg = resolve_config("toy-ca2sis", overrides=overrides)
    torch.manual_seed(0)
    run = setup_run(cfg)
    batch_data = next(iter(run.batches()))
    real = batch_data["image"].contiguous(memory_format=run.layout)  # (B, 3, 64, 64)
    one_hot = as_one_hot(batch_data["label"], run.model_config.num_classes).contiguous(memory_format=run.layout)
    training_step = TrainingStep(run, real, one_hot)  # G step, EMA, D step: the trainer's functions

    def step():
        training_step()

    if amp != "none":
        def rel_error() -> float:
            noise = training_step.noise
            with torch.no_grad():
                fp32 = run.g_step(real, one_hot, noise)[0]
                with run.autocast():
                    return relative_error(run.g_step(real, one_hot, noise)[0], fp32)
        step.rel_error = rel_error
    return step


def make_attention_step(backend: str, tokens: int = 4096, heads: int = 8, dim: int = 64, batch: int = 2):
    """One self-attention forward+backward at the paper's 64² stage (4096 tokens, 8 heads × 64)."""
    from ca2sis_lib.models.attention import PROCESSORS

    processor = PROCESSORS[backend]()
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(batch, heads, tokens, dim, generator=g, requires_grad=True) for _ in range(3))

    def step():
        processor(q, k, v).sum().backward()

    return step


def build(spec: str):
    """A step from a child spec ``kind:mode:batch`` (paper | spade | tiny | attention)."""
    kind, mode, batch = spec.split(":")
    if kind == "paper":
        return make_generator_step(mode, int(batch))
    if kind == "spade":
        return make_spade_step(int(batch))
    if kind == "tiny":
        return make_tiny_gan_step(int(batch), amp="bf16" if mode == "bf16" else "none")
    if kind == "attention":
        return make_attention_step(mode, batch=int(batch))
    raise ValueError(f"unknown benchmark kind {kind!r} in {spec!r}; use paper, spade, tiny or attention")


def run_one(spec: str, repeats: int, threads: int, flops: bool = False) -> dict:
    """Child process: build, warm up, time the repeats, report peak RSS (then FLOPs, bf16 error)."""
    import ca2sis_lib

    torch.set_num_threads(threads)
    step = build(spec)
    step()  # warm-up
    peak_before = matmul_peak(torch.float32)  # the machine's rate right now, for this process's share of it
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    result = {"spec": spec, "median_s": statistics.median(times), "times_s": times, "threads": threads,
              "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
              "peak_fp32_gflops": max(peak_before, matmul_peak(torch.float32)),
              "lib": str(Path(ca2sis_lib.__file__).parent)}
    if flops:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            step()
        result["gflop"] = counter.get_total_flops() / 1e9
    if hasattr(step, "rel_error"):
        result["rel_error_vs_fp32"] = step.rel_error()
    return result


def matmul_peak(dtype: torch.dtype, n: int = 2048, warmups: int = 3, repeats: int = 5) -> float:
    """Best of ``repeats`` n×n matmuls after ``warmups`` untimed ones, in GFLOP/s."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(warmups):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def matmul_peaks(bf16_units: bool, quick: bool) -> tuple[dict, list[str]]:
    """fp32 and bf16 peaks. Without bf16 units (oneDNN reports no bf16 support) torch's bf16 matmul
    is a scalar fallback near 1 GFLOP/s at any size, so it is measured at n = 512 only."""
    n = 1024 if quick else 2048
    peaks = {"fp32": matmul_peak(torch.float32, n)}
    if bf16_units:
        peaks["bf16"] = matmul_peak(torch.bfloat16, n)
        return peaks, [f"Matmul peaks: best of 5 n={n} matmuls after 3 warm-ups."]
    peaks["bf16"] = matmul_peak(torch.bfloat16, 512, warmups=1, repeats=2)
    return peaks, [f"Matmul peaks: best of 5 n={n} fp32 matmuls after 3 warm-ups; bf16 at n=512: this CPU has no "
                   "bf16 units (no avx512_bf16/amx_bf16; oneDNN bf16 unsupported), so torch's bf16 matmul runs "
                   "a scalar fallback and bf16 configurations are left out (--bf16-anyway runs them)."]


def suites(batch: int, bf16: bool, baseline_tree: str | None) -> dict[str, tuple[str, dict[str, str]]]:
    """Suite name -> (baseline configuration, {configuration: child spec})."""
    paper = {"authors": f"paper:authors:{batch}", "default": f"paper:default:{batch}",
             "memory": f"paper:memory:{batch}"}
    tiny = {"tiny_b8": "tiny:fp32:8"}
    if bf16:
        paper["bf16"] = f"paper:bf16:{batch}"
        tiny["tiny_b8_bf16"] = "tiny:bf16:8"
    tiny_baseline = "tiny_b8"
    if baseline_tree:
        tiny_baseline = "tiny_b8@baseline"
        tiny[tiny_baseline] = "tiny:fp32:8"
    return {"paper": ("authors", paper), "tiny": (tiny_baseline, tiny),
            "attention": ("reference", {"reference": "attention:reference:2", "sdpa": "attention:sdpa:2"})}


LABELS = {"authors": "authors' strategy (per-block checkpointing, reference attention, no chunks)",
          "default": "default (SDPA, lean feed-forward)", "memory": "memory mode (checkpointing + token chunks)",
          "bf16": "default under bf16 autocast", "tiny_b8": "tiny GAN step, batch 8 (this tree)",
          "tiny_b8_bf16": "tiny GAN step, batch 8, bf16 autocast", "tiny_b8@baseline": "tiny GAN step, batch 8 "
          "(baseline tree)", "reference": "self-attention 64², reference", "sdpa": "self-attention 64², SDPA"}


def run_suite(configs: dict[str, str], args: argparse.Namespace) -> list[dict]:
    """Interleaved rounds: each round runs every configuration once in its own process (order rotated)."""
    rounds = []
    names = list(configs)
    for r in range(args.rounds):
        results = {}
        for name in names[r % len(names):] + names[: r % len(names)]:
            cmd = [sys.executable, __file__, "--child", configs[name], "--threads", str(args.threads),
                   "--repeats", str(args.repeats)] + (["--flops"] if args.flops or r == 0 else [])
            env = dict(os.environ)
            if name.endswith("@baseline"):
                env["PYTHONPATH"] = os.pathsep.join([str(Path(args.baseline_tree).resolve()),
                                                     env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode:
                results[name] = {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
            else:
                results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"round {r + 1} {name}: {json.dumps(results[name])[:200]}", flush=True)
        rounds.append(results)
    return rounds
def cuda_training(threads: int) -> list[dict]:
    """Images/s of full paper-preset training steps (generator and discriminator) at 256², batch 8, on
    the GPU: the step of ``scripts/gpu_check.py`` (which also measures batches 1-8, fp16, channels_last,
    memory mode and memory caps), in fp32, bf16 autocast and bf16 under torch.compile."""
    import tempfile

    from ca2sis_lib.training.step_timer import TrainingStep, compile_run, synthetic_batch, time_step, timing_run

    results = []
    for mode in ("fp32", "bf16", "compile"):
        with tempfile.TemporaryDirectory() as work, timing_run("paper", work, device="cuda",
                                                               amp="none" if mode == "fp32" else "bf16") as run:
            if mode == "compile":
                compile_run(run, dynamic=False)
            step = TrainingStep(run, *synthetic_batch(run, 8))
            timing = time_step(step, warmup=3, repeats=5)  # the warm-up compiles, under "compile"
            results.append({"name": f"cuda_paper_gan_step_b8_{mode}", "median_s": timing["median_s"],
                            "images_per_s": timing["images_per_s"], "peak_gpu_gib": timing["peak_gib"],
                            "perceptual": run.perceptual_kind})
        torch.cuda.empty_cache()
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each config once per round)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per configuration and round")
    parser.add_argument("--batch", type=int, default=2, help="paper-preset batch size")
    parser.add_argument("--quick", action="store_true", help="2 rounds, 1 timed step, paper batch 1")
    parser.add_argument("--suite", nargs="*", default=["paper", "tiny", "attention"])
    parser.add_argument("--baseline-tree", help="another checkout whose tiny GAN step joins the tiny suite")
    parser.add_argument("--bf16-anyway", action="store_true", help="run bf16 rows even without bf16 units")
    parser.add_argument("--flops", action="store_true", help="count FLOPs in every round, not only the first "
                        "(one more step per process)")
    parser.add_argument("--tag", default="cpu", help="results file names: results/<tag>_<suite>.json/.md")
    parser.add_argument("--rewrite", action="store_true", help="only re-render the .md files from their JSON")
    parser.add_argument("--against", help="a report JSON to compare with (refused unless the machines match)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.repeats, args.batch = 2, 1, 1
    return args


def main() -> int:
    args = parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_report import check_same_machine, cross_report_ratios, machine, markdown

    if args.child:
        print(json.dumps(run_one(args.child, args.repeats, args.threads, args.flops)))
        return 0
    paths = [RESULTS / f"{args.tag}_{suite}.json" for suite in args.suite]
    if args.rewrite or args.against:
        missing = [path for path in paths if not path.exists()]
        for path in missing:  # e.g. a run of `--suite paper tiny` leaves no attention report
            print(f"no report {path.relative_to(RESULTS.parent.parent)}: skipped (run `python benchmarks/bench.py "
                  f"--tag {args.tag} --suite {path.stem.removeprefix(args.tag + '_')}` to make it)", file=sys.stderr)
        if len(missing) == len(paths):
            return 2
        for path in (path for path in paths if path.exists()):
            report = json.loads(path.read_text())
            if args.against:
                other = json.loads(Path(args.against).read_text())
                check_same_machine(report, other)  # raises, naming what differs
                print(path.name, json.dumps(cross_report_ratios(report, other), indent=1))
            else:
                path.with_suffix(".md").write_text(markdown(report, LABELS))
                print(markdown(report, LABELS))
        return 0

    torch.set_num_threads(args.threads)
    info = machine(args.threads)
    bf16 = info["mkldnn_bf16"] or args.bf16_anyway
    peaks, notes = matmul_peaks(info["mkldnn_bf16"], args.quick)
    print(f"torch {torch.__version__}, threads {args.threads}, peaks {peaks}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    for suite, path in zip(args.suite, paths):
        baseline, configs = suites(args.batch, bf16, args.baseline_tree)[suite]
        before = os.getloadavg()
        rounds = run_suite(configs, args)
        report = {"suite": suite, "machine": info, "threads": args.threads, "repeats": args.repeats,
                  "matmul_gflops": peaks, "baseline": baseline, "rounds": rounds, "notes": list(notes),
                  "loadavg": {"before": [round(x, 2) for x in before],
                              "after": [round(x, 2) for x in os.getloadavg()]}}
        if args.baseline_tree and suite == "tiny":
            report["notes"].append(f"Baseline tree: {args.baseline_tree}.")
        if torch.cuda.is_available() and suite == "paper":
            report["cuda"] = cuda_training(args.threads)
        path.write_text(json.dumps(report, indent=2))
        path.with_suffix(".md").write_text(markdown(report, LABELS))
        print(markdown(report, LABELS), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
