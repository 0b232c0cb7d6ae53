"""The benchmark's report: ratios taken within rounds of one run, and no comparison across machines."""

import pytest
from conftest import load_script


def _report():
    return load_script("benchmarks/bench_report.py")


MACHINE = {"cpu": "AMD EPYC", "processor": "x86_64", "cpu_count": 2, "cpu_flags": ["avx2"], "torch": "2.14.1",
           "threads": 2, "mkldnn_bf16": False}


def _run(machine=MACHINE):
    def row(seconds, gib):
        return {"median_s": seconds, "peak_rss_gib": gib}

    rounds = [{"authors": row(10.0, 5.0), "default": row(6.0, 4.5), "memory": {"error": "killed"}},
              {"authors": row(20.0, 5.0), "default": row(14.0, 4.0), "memory": {"error": "killed"}},
              {"authors": row(12.0, 5.2), "default": row(6.0, 4.68)}]
    return {"machine": dict(machine), "threads": 2, "repeats": 1, "baseline": "authors", "rounds": rounds,
            "matmul_gflops": {"fp32": 30.0, "bf16": 0.4}, "loadavg": {"before": [7.9, 7, 6], "after": [8.3, 7, 6]}}


def test_ratios_are_taken_within_each_round_then_the_median():
    summary = _report().summarise(_run())
    default = summary["default"]
    assert default["time_ratio"] == pytest.approx(0.6)  # rounds: 0.6, 0.7, 0.5 -> median 0.6
    assert default["time_ratio_range"] == pytest.approx((0.5, 0.7))
    assert default["median_s"] == pytest.approx(6.0)  # the median of absolute times is a different number
    assert default["rss_ratio"] == pytest.approx(0.9)  # 0.9, 0.8, 0.9
    assert summary["authors"]["time_ratio"] == 1.0
    assert summary["memory"] == {"error": "killed"}


def test_markdown_names_the_load_the_flags_and_the_failures():
    report = _report()
    text = report.markdown(_run(), {"default": "default (SDPA)"})
    assert "Load average (1 min) 7.9 before, 8.3 after" in text
    assert "CPU flags avx2" in text and "oneDNN bf16 no" in text and "torch 2.14.1, 2 threads" in text
    assert "| default (SDPA) | 6.00 | 4.50 | 0.60× (0.50–0.70) | 0.90× | — | — |" in text
    assert "| memory | failed: killed |" in text
    assert "3 interleaved round(s)" in text


def test_share_of_the_peak_uses_each_rounds_own_peak():
    report = _report()
    run = _run()
    for r, peak in zip(run["rounds"], (100.0, 50.0, 60.0)):  # the machine's rate drifted between rounds
        r["default"]["peak_fp32_gflops"] = peak
    run["rounds"][0]["default"]["gflop"] = 480.0  # counted in round 1 only
    default = report.summarise(run)["default"]
    # 480 GFLOP in 6 s = 80 GFLOP/s of 100; in 14 s = 34.3 of 50; in 6 s = 80 of 60 (a peak measured low)
    assert default["peak_share"] == pytest.approx(0.8)
    assert default["peak_share_range"] == pytest.approx((480 / 14 / 50, 80 / 60))
    assert "| 80% (69%–133%) |" in report.markdown(run)
    assert "share of fp32 matmul peak" in report.markdown(run)


def test_reports_from_different_machines_are_refused():
    report = _report()
    same = report.cross_report_ratios(_run(), _run())
    assert same["default"] == pytest.approx(1.0)
    other = dict(MACHINE, cpu_flags=["avx2", "avx512f", "avx512_bf16"])
    with pytest.raises(ValueError, match="cpu_flags"):
        report.cross_report_ratios(_run(), _run(other))
    with pytest.raises(ValueError, match="threads"):
        report.check_same_machine(_run(), _run(dict(MACHINE, threads=1)))


def test_cpu_flags_are_read_from_cpuinfo():
    cpuinfo = "model name\t: X\nflags\t\t: fpu avx2 avx512f avx512_bf16 sse\n"
    assert _report().cpu_flags(cpuinfo) == ["avx2", "avx512f", "avx512_bf16"]
    assert _report().cpu_flags("flags\t: fpu sse\n") == []


def test_the_authors_strategy_checkpoints_whole_blocks_with_the_reference_attention():
    import torch

    from ca2sis_lib.models import CA2SIS, CA2SISConfig
    from ca2sis_lib.models.blocks import FeedForward, TransformerBlock

    bench = load_script("benchmarks/bench.py")
    model = CA2SIS(CA2SISConfig.tiny(gradient_checkpointing=True, attention_backend="reference"))
    assert any(m.chunk_tokens for m in model.modules() if isinstance(m, TransformerBlock))  # memory mode chunks
    bench.authors_strategy(model)
    assert all(m.chunk_tokens == 0 for m in model.modules() if isinstance(m, TransformerBlock))
    assert not any(m.lean for m in model.modules() if isinstance(m, FeedForward))
    assert bench.suites(2, False, None)["paper"][0] == "authors"
    assert "bf16" in bench.suites(2, True, None)["paper"][1]
    assert bench.suites(2, False, "/main")["tiny"][0] == "tiny_b8@baseline"
    assert bench.relative_error(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0])) == pytest.approx(1.0)


def test_rewrite_renders_the_reports_there_are_and_names_the_missing_ones(tmp_path, monkeypatch, capsys):
    import json
    import sys

    bench = load_script("benchmarks/bench.py")
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    monkeypatch.setattr(bench, "RESULTS", results)
    (results / "t_paper.json").write_text(json.dumps(_run()))
    monkeypatch.setattr(sys, "argv", ["bench.py", "--rewrite", "--tag", "t", "--suite", "paper", "tiny"])
    assert bench.main() == 0
    assert "| default" in (results / "t_paper.md").read_text()
    assert "no report benchmarks/results/t_tiny.json: skipped" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["bench.py", "--rewrite", "--tag", "t", "--suite", "tiny"])
    assert bench.main() == 2  # nothing to render
