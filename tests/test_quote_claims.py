"""scripts/quote_claims.py: notebook 02's claims and quality.json rendered into docs/claims.md."""

from __future__ import annotations

import json
import re

import pytest
from conftest import load_script

qc = load_script("scripts/quote_claims.py")


def entry(**changes):
    base = {"verdict": "inconclusive", "statement": "Leakage 0.0040 vs 0.0054; the interval includes zero.",
            "difference": -0.0014, "ci95": [-0.0031, 0.0002], "metric": "leakage, CA²-SIS minus SEAN (lower is better)"}
    return {**base, **changes}


def test_verdicts_are_rendered_in_claim_order_with_their_intervals():
    metrics = {"pairs": 100, "claims": {"C6a": entry(verdict="agrees", difference=1.02, ci95=[0.8, 1.3]),
                                        "C1b": entry(), "C10": entry(), "C1a": entry(verdict="disagrees")}}
    with pytest.raises(ValueError, match="C10"):  # not a claim of docs/claims.md
        qc.render_verdicts(metrics)
    del metrics["claims"]["C10"]
    table = qc.render_verdicts(metrics)
    rows = [line for line in table.splitlines() if re.match(r"\| C\d", line)]
    assert [row.split("|")[1].strip() for row in rows] == ["C1a", "C1b", "C6a"]
    assert "**disagrees**" in rows[0] and "[-0.0031, +0.0002]" in rows[1] and "+1.02" in rows[2]
    assert "100 held-out pairs" in table


def test_a_failed_level_and_the_classes_a_claim_misses_are_in_the_verdict_column():
    metrics = {"pairs": 100, "claims": {
        "C1a": entry(verdict="agrees", exceptions=["mouth"]),
        "C1b": entry(verdict="level fails", interval_verdict="inconclusive", exceptions=["cloth"]),
        "C5": entry(verdict="agrees", interval_verdict="agrees", exceptions=[])}}
    rows = {row.split("|")[1].strip(): row.split("|")[2].strip() for row in qc.render_verdicts(metrics).splitlines()
            if re.match(r"\| C\d", row)}
    assert rows == {"C1a": "**agrees**, not for mouth", "C1b": "**level fails** (interval: inconclusive)",
                    "C5": "**agrees**"}


@pytest.mark.parametrize("bad, message", [
    (entry(verdict="agrees!"), "verdict"),
    (entry(ci95=[0.2, 0.1]), "low > high"),
    (entry(ci95=[0.1]), r"\[low, high\]"),
    (entry(difference=float("nan")), "finite"),
    ({k: v for k, v in entry().items() if k != "metric"}, "metric"),
    (entry(verdict="level fails", interval_verdict="level fails"), "interval_verdict"),
    (entry(exceptions="mouth"), "list of class names"),
])
def test_a_malformed_claim_is_refused_naming_the_field(bad, message):
    with pytest.raises(ValueError, match=message):
        qc.render_verdicts({"claims": {"C5": bad}})


def test_a_smoke_run_or_a_missing_claims_mapping_is_refused():
    with pytest.raises(ValueError, match="smoke"):
        qc.render_verdicts({"smoke": True, "claims": {"C5": entry()}})
    assert "SMOKE RUN" in qc.render_verdicts({"protocol": {"smoke": True, "pairs": 4}, "claims": {"C5": entry()}},
                                             allow_smoke=True)
    with pytest.raises(ValueError, match="no 'claims' mapping"):
        qc.render_verdicts({"claims": [{"claim": "C5 robust", "verdict": "agrees"}]})


def test_splice_replaces_only_the_marked_block():
    text = "a\n<!-- x:begin -->\nold\n<!-- x:end -->\nb\n"
    assert qc.splice(text, "x", "new") == "a\n<!-- x:begin -->\nnew\n<!-- x:end -->\nb\n"
    with pytest.raises(ValueError, match="exactly one"):
        qc.splice("no markers", "x", "new")


def test_docs_claims_lists_every_claim_id_and_is_up_to_date_with_quality_json():
    text = qc.DOCS.read_text(encoding="utf-8")
    assert re.findall(r"^## (C\d+) ·", text, flags=re.M) == list(qc.CLAIM_IDS)
    quality = json.loads(qc.QUALITY.read_text())
    assert qc.update(text, None, quality) == text, "run python scripts/quote_claims.py"
    miou = quality["ca2sis_tiny_toy"]["attention_miou"]["cross@32"]
    assert f"| `cross@32` | {miou:.2f} |" in text


def test_docs_claims_quotes_the_recorded_full_run_of_notebook_02():
    """The verdict table is the recorded full (non-smoke) run's, re-rendered byte for byte."""
    recorded = qc.ROOT / "docs" / "data" / "02_spade_vs_cross_attention.metrics.json"
    metrics = json.loads(recorded.read_text())
    assert not metrics.get("smoke") and set(metrics["claims"]) >= {"C1a", "C1b", "C4", "C5", "C6a", "C6b"}
    text = qc.DOCS.read_text(encoding="utf-8")
    quality = json.loads(qc.QUALITY.read_text())
    assert qc.update(text, metrics, quality, metrics_source=recorded.relative_to(qc.ROOT).as_posix()) == text, (
        "run python scripts/quote_claims.py --metrics docs/data/02_spade_vs_cross_attention.metrics.json")
