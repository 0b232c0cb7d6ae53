"""The benchmark's report: targets beside measurements, with the factor by which each is missed."""

from conftest import load_script


def _bench():
    return load_script("benchmarks/bench.py")


def test_targets_table_reports_the_miss_factor_and_what_was_not_run():
    bench = _bench()
    report = {"machine": {"processor": "x", "cpu_count": 2, "torch": "t"}, "threads": 2,
              "matmul_gflops": {"fp32": 100.0, "bf16": 1.0},
              "results": [{"name": "ca2sis_paper_b2_default", "median_s": 21.0, "peak_rss_gib": 4.8,
                           "gflop": 1591.0, "gflops_per_s": 75.0},
                          {"name": "ca2sis_paper_b2_memory", "error": "boom"}]}
    text = bench.markdown(report)
    assert "| default | ≤ 14 s | 21.0 s (1.50×) | ≤ 4.8 GiB | 4.80 GiB (1.00×) |" in text
    assert "| memory mode | ≤ 20 s | not run |" in text
    assert "| bf16 autocast | ≤ 8 s | not run | — | not run |" in text
    assert "failed: boom" in text
