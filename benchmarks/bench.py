"""Benchmarks: `make bench` (or `python benchmarks/bench.py [--quick] [--only NAME ...]`).

Each configuration runs in its own process (so peak RSS is that configuration's alone), with a
warm-up and the median of at least 5 timed repeats, ``torch.set_num_threads`` fixed and printed,
and FLOPs counted with ``torch.utils.flop_counter``. Results go to benchmarks/results/ as JSON and
as a markdown table, with the machine's description and a measured matmul peak for reference.
On a CUDA device it measures paper-preset training throughput (images/s) in fp32, bf16 autocast
and with torch.compile, and peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
    g = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    labels = torch.randint(0, classes, (batch, size // 16, size // 16), generator=g)
    labels = labels.repeat_interleave(16, 1).repeat_interleave(16, 2)  # blocky masks, every class present
    return image, labels


def make_generator_step(mode: str, batch: int):
    """Paper-preset CA²-SIS generator forward+backward.

    mode: default | memory | bf16 | reference | plain_ff (default with the feed-forward's plain
    autograd path, which keeps GELU(gate) and the GEGLU product for backward)."""
    from ca2sis_lib.models import CA2SIS, CA2SISConfig
    from ca2sis_lib.models.blocks import FeedForward

    config = CA2SISConfig.paper(gradient_checkpointing=mode == "memory",
                                attention_backend="reference" if mode == "reference" else "sdpa")
    torch.manual_seed(0)
    model = CA2SIS(config).train()
    for module in model.modules():
        if isinstance(module, FeedForward):
            module.lean = mode != "plain_ff"
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


def make_tiny_gan_step(batch: int, channels_last: bool = False, **model_overrides):
    """One GAN step (G, EMA, D) of the toy-ca2sis recipe, through the trainer's own step functions."""
    import tempfile

    from ca2sis_lib.masks import as_one_hot
    from ca2sis_lib.training.config import resolve_config
    from ca2sis_lib.training.run import setup_run
    from ca2sis_lib.training.steps import discriminator_step, generator_step, update_ema

    out_dir = tempfile.mkdtemp(prefix="ca2sis-bench-")  # nothing is written: the run is never saved
    cfg = resolve_config("toy-ca2sis", overrides={"batch_size": batch, "toy_samples": batch, "out_dir": out_dir,
                                                  "channels_last": channels_last, "model_overrides": model_overrides})
    run = setup_run(cfg)
    batch_data = next(iter(run.batches()))
    real = batch_data["image"].contiguous(memory_format=run.layout)  # (B, 3, 64, 64)
    one_hot = as_one_hot(batch_data["label"], run.model_config.num_classes).contiguous(memory_format=run.layout)
    noise = torch.randn(batch, run.model_config.noise_dim)

    def step():
        fake, _ = generator_step(run, real, one_hot, noise)
        update_ema(run.ema, run.generator, cfg.ema_decay)
        discriminator_step(run, real, one_hot, noise, fake)

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


def matmul_peak(dtype: torch.dtype, n: int = 1024, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9  # GFLOP/s


CONFIGS = {
    "ca2sis_paper_b1_default": lambda: make_generator_step("default", 1),
    "ca2sis_paper_b2_default": lambda: make_generator_step("default", 2),
    "ca2sis_paper_b2_plain_ff": lambda: make_generator_step("plain_ff", 2),
    "ca2sis_paper_b1_memory": lambda: make_generator_step("memory", 1),
    "ca2sis_paper_b2_memory": lambda: make_generator_step("memory", 2),
    # the same in a process whose malloc serves large blocks by mmap (freed memory goes back to the
    # OS instead of fragmenting the heap across steps): see CHILD_ENV
    "ca2sis_paper_b2_memory_mmap": lambda: make_generator_step("memory", 2),
    "ca2sis_paper_b1_bf16": lambda: make_generator_step("bf16", 1),
    "ca2sis_paper_b2_bf16": lambda: make_generator_step("bf16", 2),
    "spade_paper_b1": lambda: make_spade_step(1),
    "spade_paper_b2": lambda: make_spade_step(2),
    "tiny_gan_step_b8": lambda: make_tiny_gan_step(8),
    "tiny_gan_step_b8_channels_last": lambda: make_tiny_gan_step(8, channels_last=True),
    # the tiny preset's style encoder before it was read out at full size (4 down, 3 up: finest at 32²)
    "tiny_gan_step_b8_style43": lambda: make_tiny_gan_step(8, style_downsamples=4, style_upsamples=3),
    "tiny_gan_step_b8_style43_channels_last": lambda: make_tiny_gan_step(8, True, style_downsamples=4,
                                                                         style_upsamples=3),
    "attention_sdpa_64x64": lambda: make_attention_step("sdpa"),
    "attention_reference_64x64": lambda: make_attention_step("reference"),
}


# glibc: a fixed 1 MiB mmap threshold (setting it turns off the dynamic threshold that lets large
# freed blocks stay in the heap); costs page faults, saves the peak RSS that fragmentation adds
CHILD_ENV = {"ca2sis_paper_b2_memory_mmap": {"MALLOC_MMAP_THRESHOLD_": str(2**20)}}


def run_one(name: str, repeats: int, threads: int) -> dict:
    """Child process: build, warm up, count FLOPs, time the repeats, report peak RSS."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(threads)
    step = CONFIGS[name]()
    step()  # warm-up
    with FlopCounterMode(display=False) as counter:
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    flops = counter.get_total_flops()
    return {"name": name, "median_s": median, "times_s": times, "gflop": flops / 1e9,
            "gflops_per_s": flops / median / 1e9, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            / 2**20, "threads": threads}


def output_agreement(threads: int, with_bf16: bool = True) -> dict:
    """Default (SDPA) vs reference path, and bf16 vs fp32, on the paper preset at batch 1 (forward)."""
    from ca2sis_lib.models import CA2SIS, CA2SISConfig

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = CA2SIS(CA2SISConfig.paper()).eval()
    for p in model.parameters():  # leave the zero-initialised identity so attention matters
        p.data.add_(0.02 * torch.randn_like(p))
    image, labels = _paper_batch(1)
    with torch.no_grad():
        fp32 = model(image, labels).image
        bf16 = None
        if with_bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                bf16 = model(image, labels).image.float()
        model.set_attention_backend("reference")
        reference = model(image, labels).image
    return {"sdpa_vs_reference_max_abs": (fp32 - reference).abs().max().item(),
            "bf16_vs_fp32_relative_l2": ((bf16 - fp32).norm() / fp32.norm()).item() if bf16 is not None else None}


def cuda_training(threads: int) -> list[dict]:
    """Images/s of paper-preset generator training steps at 256², batch 8, on the GPU."""
    from ca2sis_lib.models import CA2SIS, CA2SISConfig

    results = []
    image, labels = (t.cuda() for t in _paper_batch(8))
    one_hot = torch.nn.functional.one_hot(labels, 19).permute(0, 3, 1, 2).float()  # (B, K, H, W)
    for mode in ("fp32", "bf16", "compile"):
        torch.manual_seed(0)
        model = CA2SIS(CA2SISConfig.paper()).cuda().train()
        model.mapping.requires_grad_(False)
        runner = torch.compile(model) if mode == "compile" else model
        torch.cuda.reset_peak_memory_stats()

        def step(mode=mode, runner=runner, model=model):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=mode != "fp32"):
                out = runner(image, one_hot)
                (out.image.float().square().mean() + attention_loss(out.logits, one_hot)).backward()
            model.zero_grad(set_to_none=True)

        for _ in range(3):
            step()
        torch.cuda.synchronize()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            step()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        results.append({"name": f"cuda_paper_b8_{mode}", "median_s": statistics.median(times),
                        "images_per_s": 8 / statistics.median(times),
                        "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30})
    return results


def machine() -> dict:
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()}
    try:
        model = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")]
        info["cpu"] = model[0].split(":", 1)[1].strip() if model else ""
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


# the targets on a 2-core CPU, paper preset, 256², batch 2: (config, seconds, GiB), None = no limit
TARGETS = {"default": ("ca2sis_paper_b2_default", 14.0, 4.8), "memory mode": ("ca2sis_paper_b2_memory", 20.0, 2.9),
           "bf16 autocast": ("ca2sis_paper_b2_bf16", 8.0, None)}


def targets_table(report: dict) -> list[str]:
    """Each target beside what was measured, and by how much it is missed (x = measured / target)."""
    results = {r["name"]: r for r in report["results"]}
    lines = ["", "| target (batch 2) | time | measured | peak RSS | measured |", "|---|---:|---:|---:|---:|"]
    for label, (name, seconds, gib) in TARGETS.items():
        r = results.get(name)
        if r is None or "error" in r:
            lines.append(f"| {label} | ≤ {seconds:g} s | not run | {f'≤ {gib:g} GiB' if gib else '—'} | not run |")
            continue
        time_cell = f"{r['median_s']:.1f} s ({r['median_s'] / seconds:.2f}×)"
        memory_cell = f"{r['peak_rss_gib']:.2f} GiB ({r['peak_rss_gib'] / gib:.2f}×)" if gib else "—"
        memory_target = f"≤ {gib:g} GiB" if gib else "—"
        lines.append(f"| {label} | ≤ {seconds:g} s | {time_cell} | {memory_target} | {memory_cell} |")
    return lines


def markdown(report: dict) -> str:
    lines = [f"Machine: {report['machine'].get('cpu', report['machine']['processor'])}, "
             f"{report['machine']['cpu_count']} cores, torch {report['machine']['torch']}, "
             f"{report['threads']} threads; matmul peak fp32 {report['matmul_gflops']['fp32']:.0f} GFLOP/s, "
             f"bf16 {report['matmul_gflops']['bf16']:.0f} GFLOP/s.", "",
             "| configuration | median s | peak RSS GiB | GFLOP | GFLOP/s | of fp32 peak |",
             "|---|---:|---:|---:|---:|---:|"]
    peak = report["matmul_gflops"]["fp32"]
    for r in report["results"]:
        if "error" in r:
            lines.append(f"| {r['name']} | failed: {r['error'][:60]} | | | | |")
            continue
        lines.append(f"| {r['name']} | {r['median_s']:.2f} | {r['peak_rss_gib']:.2f} | {r['gflop']:.0f} | "
                     f"{r['gflops_per_s']:.0f} | {r['gflops_per_s'] / peak:.0%} |")
    agreement = report.get("agreement")
    if agreement:
        lines += ["", f"Output agreement (paper preset, batch 1): SDPA vs reference max |Δ| = "
                      f"{agreement['sdpa_vs_reference_max_abs']:.2e}; bf16 vs fp32 relative L2 error = "
                      f"{agreement['bf16_vs_fp32_relative_l2']}."]
    lines += targets_table(report)
    for r in report.get("cuda", []):
        lines.append(f"- {r['name']}: {r['images_per_s']:.1f} images/s, peak GPU memory {r['peak_gpu_gib']:.1f} GiB")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="configuration names to run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--agreement", action="store_true", help="also compare outputs (with --only)")
    parser.add_argument("--agreement-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-bf16", action="store_true", help="leave out bf16 (slow where the CPU lacks bf16 units)")
    parser.add_argument("--tag", default="cpu", help="results file name: results/<tag>.json/.md")
    parser.add_argument("--rewrite", action="store_true", help="only re-render results/<tag>.md from its JSON")
    args = parser.parse_args()
    if args.rewrite:
        report = json.loads((RESULTS / f"{args.tag}.json").read_text())
        (RESULTS / f"{args.tag}.md").write_text(markdown(report))
        print(markdown(report))
        return 0
    if args.child:
        print(json.dumps(run_one(args.child, args.repeats, args.threads)))
        return 0
    if args.agreement_child:
        print(json.dumps(output_agreement(args.threads, with_bf16=not args.skip_bf16)))
        return 0

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {args.threads}, repeats {args.repeats}", flush=True)
    report = {"machine": machine(), "threads": args.threads, "repeats": args.repeats,
              "matmul_gflops": {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)},
              "results": []}
    names = args.only or [n for n in CONFIGS if not (args.skip_bf16 and "bf16" in n)]
    for name in names:
        cmd = [sys.executable, __file__, "--child", name, "--threads", str(args.threads),
               "--repeats", str(args.repeats)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **CHILD_ENV.get(name, {})})
        if proc.returncode:
            report["results"].append({"name": name, "error": proc.stderr.strip().splitlines()[-1]})
        else:
            report["results"].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(report["results"][-1])[:300], flush=True)
    if not args.only or args.agreement:
        extra = ["--skip-bf16"] if args.skip_bf16 else []
        proc = subprocess.run([sys.executable, __file__, "--agreement-child", "--threads", str(args.threads), *extra],
                              capture_output=True, text=True)
        report["agreement"] = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    if torch.cuda.is_available():
        report["cuda"] = cuda_training(args.threads)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.tag}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{args.tag}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
