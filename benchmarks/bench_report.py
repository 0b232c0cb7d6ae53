"""The benchmark's machine description and its reports: ratio tables from one run, never across machines.

Absolute times depend on the machine and on how loaded it is, so ``make bench`` reports every
configuration as a ratio to the authors' execution strategy measured in the same run, in
interleaved rounds (round r runs every configuration once, each in its own process; the ratio is
taken within each round, then the median over rounds). A report records the load average before
and after, the CPU's bf16-relevant flags, torch and the thread count; two reports are compared
only when their machine fingerprints match (:func:`check_same_machine`).
"""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path
from typing import Any

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")  # what decides fp32/bf16 speed on a CPU


def cpu_flags(cpuinfo: str | None = None) -> list[str]:
    """The flags of FLAGS that /proc/cpuinfo lists (empty where it cannot be read)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    line = next((ln for ln in cpuinfo.splitlines() if ln.startswith("flags")), "")
    present = set(line.split(":", 1)[-1].split())
    return [f for f in FLAGS if f in present]


def machine(threads: int) -> dict[str, Any]:
    """What a result depends on: CPU model and flags, cores, torch, threads (and the GPU, if any)."""
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                            "cpu_count": os.cpu_count(), "torch": torch.__version__,
                            "python": platform.python_version(), "threads": threads, "cpu_flags": cpu_flags(),
                            "mkldnn_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())}
    try:
        model = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")]
        info["cpu"] = model[0].split(":", 1)[1].strip() if model else ""
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


FINGERPRINT_KEYS = ("cpu", "processor", "cpu_count", "cpu_flags", "torch", "threads", "gpu")


def fingerprint(info: dict[str, Any]) -> dict[str, Any]:
    """The part of a machine description that must match before two reports' numbers are compared."""
    return {k: info.get(k) for k in FINGERPRINT_KEYS}


def check_same_machine(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the differences unless reports ``a`` and ``b`` come from one machine class."""
    fa, fb = fingerprint(a["machine"]), fingerprint(b["machine"])
    diff = {k: (fa[k], fb[k]) for k in FINGERPRINT_KEYS if fa[k] != fb[k]}
    if diff:
        raise ValueError(f"reports come from different machines or settings {diff}: their times cannot be compared; "
                         "rerun both configurations in one `make bench` run instead")


def cross_report_ratios(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """Median time of every configuration in ``a`` over the same one in ``b`` (same machine only)."""
    check_same_machine(a, b)
    ours, theirs = summarise(a), summarise(b)
    both = [n for n in ours if "median_s" in ours[n] and "median_s" in theirs.get(n, {})]
    return {name: ours[name]["median_s"] / theirs[name]["median_s"] for name in both}


# -- one run's rounds ---------------------------------------------------------------------------
def summarise(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per configuration: median time and peak RSS over rounds, and (with a baseline) the median of
    the per-round ratios to the baseline run in the same round."""
    rounds: list[dict[str, dict]] = report["rounds"]
    baseline = report.get("baseline")
    names = list(dict.fromkeys(n for r in rounds for n in r))
    out: dict[str, dict[str, float]] = {}
    for name in names:
        ok = [r for r in rounds if name in r and "error" not in r[name]]
        if not ok:
            out[name] = {"error": next(r[name]["error"] for r in rounds if name in r)}
            continue
        row = {"median_s": statistics.median(r[name]["median_s"] for r in ok),
               "peak_rss_gib": statistics.median(r[name]["peak_rss_gib"] for r in ok), "rounds": len(ok)}
        for key in ("gflop", "rel_error_vs_fp32"):
            if key in ok[0][name]:
                row[key] = ok[0][name][key]
        timed = [r[name] for r in ok if "peak_fp32_gflops" in r[name]]
        if "gflop" in row and timed:  # FLOP/s of each round over the matmul peak measured in that same process
            shares = [row["gflop"] / t["median_s"] / t["peak_fp32_gflops"] for t in timed]
            row["peak_share"] = statistics.median(shares)
            row["peak_share_range"] = (min(shares), max(shares))
        paired = [r for r in ok if baseline in r and "error" not in r[baseline]]
        if baseline and paired:
            time_ratios = [r[name]["median_s"] / r[baseline]["median_s"] for r in paired]
            row["time_ratio"] = statistics.median(time_ratios)
            row["time_ratio_range"] = (min(time_ratios), max(time_ratios))
            row["rss_ratio"] = statistics.median(r[name]["peak_rss_gib"] / r[baseline]["peak_rss_gib"] for r in paired)
        out[name] = row
    return out


def header(report: dict[str, Any]) -> str:
    m = report["machine"]
    load = report.get("loadavg", {})
    peaks = report.get("matmul_gflops", {})
    peak_text = ", ".join(f"{k} {v:.3g} GFLOP/s" for k, v in peaks.items() if isinstance(v, (int, float)))
    return (f"Machine: {m.get('cpu', m['processor'])}, {m['cpu_count']} cores, CPU flags "
            f"{' '.join(m.get('cpu_flags', [])) or 'none of ' + ' '.join(FLAGS)}, oneDNN bf16 "
            f"{'yes' if m.get('mkldnn_bf16') else 'no'}; torch {m['torch']}, {m.get('threads', report.get('threads'))} "
            f"threads. Load average (1 min) {load.get('before', ['?'])[0]} before, {load.get('after', ['?'])[0]} "
            f"after. Matmul peak: {peak_text or 'not measured'}.")


def ratio_table(report: dict[str, Any], labels: dict[str, str] | None = None) -> list[str]:
    """Markdown rows: each configuration's median time and peak RSS, and its ratios to the baseline."""
    labels = labels or {}
    baseline = report.get("baseline")
    lines = [f"| configuration | median s | peak RSS GiB | time / {baseline} | RSS / {baseline} | "
             "rel. error vs fp32 | share of fp32 matmul peak |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in summarise(report).items():
        label = labels.get(name, name)
        if "error" in row:
            lines.append(f"| {label} | failed: {str(row['error'])[:60]} | | | | | |")
            continue
        ratio = "—"
        if "time_ratio" in row:
            lo, hi = row["time_ratio_range"]
            ratio = f"{row['time_ratio']:.2f}× ({lo:.2f}–{hi:.2f})"
        rss = f"{row['rss_ratio']:.2f}×" if "rss_ratio" in row else "—"
        err = f"{row['rel_error_vs_fp32']:.1e}" if row.get("rel_error_vs_fp32") is not None else "—"
        share = "—"
        if "peak_share" in row:
            lo, hi = row["peak_share_range"]
            share = f"{row['peak_share']:.0%} ({lo:.0%}–{hi:.0%})"
        times = f"{row['median_s']:.2f} | {row['peak_rss_gib']:.2f}"
        lines.append(f"| {label} | {times} | {ratio} | {rss} | {err} | {share} |")
    return lines


def markdown(report: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    rounds = len(report["rounds"])
    lines = [header(report), "",
             f"{rounds} interleaved round(s); each configuration in its own process per round, "
             f"{report.get('repeats', '?')} timed step(s) after a warm-up; ratios are per round, then the median "
             "(range in brackets).", ""]
    lines += ratio_table(report, labels)
    if any("peak_share" in row for row in summarise(report).values()):
        lines += ["", "Share of the fp32 matmul peak: the configuration's FLOP (counted once, in round 1, with "
                  "torch.utils.flop_counter) per second of each round, over the best n=2048 fp32 matmul rate "
                  "measured in that same process just before and after its timed steps; median over rounds (range)."]
    for note in report.get("notes", []):
        lines += ["", note]
    return "\n".join(lines) + "\n"
