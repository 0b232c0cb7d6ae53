"""Notebook harness: every notebooks/*.ipynb runs top to bottom under papermill with SMOKE=True.

Each notebook runs in its own temporary working directory (so it must obtain its own data), with
a per-cell timeout, and writes the numbers it found to ``OUTPUT_DIR/metrics.json``; the checks
below assert on those numbers, never on pixels. The conventions of the brief are checked first,
without executing anything.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import papermill
import pytest
from conftest import error_outputs

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def smoke_parameters(output_dir: Path) -> dict:
    return {"SMOKE": True, "OUTPUT_DIR": str(output_dir)}


# What each notebook must have found (read from its metrics.json). Every notebook needs an entry.
def _check_00(m: dict) -> None:
    assert m["paper_parameters"] == 77_229_243
    assert m["tiny_generator_parameters_without_mapping"] <= 5_000_000
    assert abs(m["tiny_initial_attn_loss"] - 0.6931) < 0.01
    assert m["paper_style_shape"] == [1, 19, 1280]
    assert len(m["paper_attention_shapes"]) == 5


def _check_04(m: dict) -> None:
    assert m["num_layers"] == 3 and len(m["layer_names"]) == 3  # the tiny model: 16², 32², 64²
    assert m["softmax_max_error"] < 1e-5  # attention over the K classes sums to 1
    assert abs(m["attn_loss_recomputed"] - m["attn_loss_model"]) < 1e-5  # recorded logits = what L_att used
    assert m["output_unchanged"]  # recording leaves the image bitwise unchanged
    assert m["self_attention_layers"] and m["self_attention_row_sum_max_error"] < 1e-5
    for per_layer in (m["mean_iou_per_layer"], m["mean_auroc_per_layer"]):
        assert list(per_layer) == m["layer_names"] and all(0.0 <= v <= 1.0 for v in per_layer.values())
    assert m["iou_all_in_unit_interval"] and m["auroc_all_in_unit_interval"]
    # only a new sample runs the model: layer, head, class and pixel changes are free
    assert m["inspector_forwards_initial"] == 1
    assert m["inspector_forwards_after_controls"] == 1
    assert m["inspector_forwards_after_samples"] == m["inspector_samples_visited"]
    assert m["inspector_export_bytes"] > 0 and len(m["figures"]) >= 10


def _check_01(m: dict) -> None:
    assert m["toy_num_classes"] == 12 and m["celebamask_num_classes"] == 19
    assert m["train_samples"] > 0 and m["written"] == {"train": m["train_samples"], "test": m["test_samples"]}
    assert m["checker_exit_status"] == 0 and m["broken_checker_exit_status"] == 1
    assert len(m["class_frequencies"]) == 12 and abs(sum(m["class_frequencies"].values()) - 1) < 1e-6
    assert m["round_trip_label_mismatches"] == 0 and m["edit_pixels_outside_rim"] == 0
    assert m["celebamask_checker_exit_status"] == 0 and m["celebamask_labels_match"] is True
    assert m["celebamask_prepared"]["train"] > 0 and m["celebamask_prepared"]["test"] > 0
    assert m["custom_dataset_pairs"] > 0


def _check_03(m: dict) -> None:
    assert m["steps_requested"] > 0 and m["steps_done"] == m["steps_requested"]
    assert len(m["chunks"]) >= 2 and m["resumed_ok"] is True  # each chunk continued from the previous one's step
    assert sum(c["to"] - c["from"] for c in m["chunks"]) == m["steps_requested"]
    assert {"g_total", "d_hinge"} <= set(m["final_losses"])
    assert all(abs(v) < float("inf") for v in m["final_losses"].values())  # finite (NaN fails too)
    assert m["resume_exact"] is True and m["changed_config_refused"] is True  # 2 + 2 steps == 4 steps, bitwise
    assert m["sample_grids"] >= 1
    assert m["ema_warmup"] is True and m["seconds_per_step"] > 0  # the default: an EMA meaningful after 200 steps
    assert {"psnr", "ssim"} <= set(m["run_quality"]) and {"psnr", "ssim"} <= set(m["run_quality_raw"])
    if m["shipped_available"]:
        assert m["shipped_quality"]["psnr"] > 15


def _check_02(m: dict) -> None:
    assert m["smoke"] is True  # scripts/quote_claims.py refuses a smoke run's verdicts by this flag
    assert m["spade_inline_vs_library_max_error"] < 1e-5  # the inline SPADE is the library's
    assert m["cross_attention_inline_vs_library_max_error"] < 1e-5  # and so is the inline attn2
    assert m["spade_gamma_interior_std"] < 1e-5  # γ is a function of the mask neighbourhood only
    assert m["cross_attention_sum_error"] < 1e-5
    assert m["cross_attention_value_change_vs_attention_corr"] > 0.999  # value path: Δout_p ∝ a_pk (one head)
    assert m["cross_attention_key_path_mean_shift"] > 0  # the key path moves the attention too
    assert {r["layer"] for r in m["layer_cost"]} == {"SPADE", "class cross-attention"}
    recon = {r["model"]: r for r in m["reconstruction"]}
    assert set(recon) == {"real images (parser ceiling)", "CA²-SIS", "SEAN"}
    assert all(0 <= r["layout mIoU"] <= 1 for r in recon.values())
    assert {r["model"] for r in m["style_transfer"]} == {"CA²-SIS", "SEAN"}
    assert all(r["leakage"] >= 0 and r["error_in_class"] >= 0 for r in m["style_transfer"])
    assert len({r["method"] for r in m["shape_transfer"]}) == 3
    kinds = {r["kind"] for r in m["robustness"]}
    assert kinds == {"label_flips", "boundary_jitter", "spurious_blobs"}
    assert all(r["changed_pixels"] == 0 for r in m["robustness"] if r["level"] == 0)
    assert set(m["step_seconds"]) == {"CA²-SIS", "SEAN"} and m["timing_batch"] >= 1
    claims = m["claims"]  # the decision rule of ca2sis_lib.claims, one entry per claim tested
    assert set(claims) == {"C1a", "C1b", "C4", "C5", "C6a", "C6b"}
    for key, c in claims.items():
        assert set(c) == {"verdict", "statement", "difference", "ci95", "metric", "level"}, key
        assert c["verdict"] in {"agrees", "disagrees", "inconclusive"}, key
        lo, hi = c["ci95"]
        assert math.isfinite(lo) and math.isfinite(hi) and lo <= c["difference"] <= hi, key  # an ordered interval
        assert c["statement"] and c["metric"] and "[" in c["statement"], key  # the sentence quotes its interval
        # the verdict follows from the interval: it agrees only if the interval leaves zero on one side
        if c["verdict"] == "agrees" or c["verdict"] == "disagrees":
            assert lo > 0 or hi < 0, key
    for key in ("C1a", "C1b", "C4"):  # claims with an absolute level that must mean what the claim says
        assert claims[key]["level"] is not None and 0 <= claims[key]["level"] <= 1, key
        if claims[key]["verdict"] == "agrees":
            assert claims[key]["level"] > 0.5, key
    assert "mouth" in claims["C1a"]["statement"] and "nose" in claims["C4"]["statement"]  # the per-class breakdowns
    assert m["decision_rule"]["resamples"] >= 1000
    assert all(0 <= v <= 1 for v in m["shape_moved_class_iou"].values()) and m["shape_moved_class_ceiling"]
    assert 0.2e6 < m["parser_parameters"] < 0.35e6  # the 0.27 M parser the README quotes
    results = m["_files"]["results.json"]  # the table the notebook publishes holds the same findings
    assert results["claims"] == m["claims"] and results["protocol"]["pairs"] == m["pairs"]
    assert {"reconstruction", "style_transfer", "light_consistency", "shape_transfer", "robustness"} <= set(results)


def _check_05(m: dict) -> None:
    assert m["global_diagonal_equals_reconstruction"] < 1e-5  # own styles = reconstruction
    assert m["style_pairs"] > 0 and m["shape_pairs"] > 0
    assert max(m["style_interpolation_endpoint_errors"]) < 1e-5  # t = 0 is A, t = 1 the transfer
    assert m["class_transfer_rmse_in_class"] < m["unedited_rmse_in_class"]  # the edit moves towards the ideal
    assert 0 <= m["shape_without_mask_miou"] <= 1 and 0 <= m["shape_with_mask_miou"] <= 1
    assert m["shape_tokens_vs_channels_max_difference"] < 1e-5  # one shared Linear per channel: same edit
    assert len(m["shape_interpolation_iou_with_b"]) == 5
    assert m["noise_diversity_mean_abs"] > 0.01 and m["noise_reproducible"]  # different z, different images
    for key in ("noise_diversity_mean_abs", "real_style_diversity_mean_abs", "gaussian_codes_diversity_mean_abs"):
        assert 0 <= m[key] <= 1, key  # pixel values in [0, 1]: the scale the notebook states
    for key in ("noise_parser_miou", "gaussian_codes_parser_miou", "reconstruction_parser_miou"):
        assert 0 <= m[key] <= 1, key  # the failure of noise-driven samples, measured
    assert isinstance(m["shape_parts_lost"], dict) and 0 <= m["shape_composed_mask_miou"] <= 1
    assert m["sean_refuses_mask_free_shape_edit"]
    assert m["editor_runs_for_irrelevant_change"] == 0 and m["editor_refused_empty_classes"]
    assert "shape: tokens" in m["editor_operations"] and m["editor_export_bytes"] > 0
    assert len(m["figures"]) >= 8


def _check_exercises(stem: str, m: dict) -> None:
    """Every exercise of the notebook was checked, and its solution passed (ca2sis_lib.exercises)."""
    from ca2sis_lib.exercises import EXERCISES

    assert m["exercises"] == dict.fromkeys(EXERCISES[stem], "correct"), m["exercises"]
    assert m["exercises_passed"] == len(EXERCISES[stem])


CHECKS = {"00_anatomy_of_ca2sis": _check_00, "01_data_preparation": _check_01,
          "02_spade_vs_cross_attention": _check_02, "03_training": _check_03, "04_attention_inspection": _check_04,
          "05_style_and_shape_editing": _check_05}


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_conventions(path: Path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "notebook has no code cells"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), (
        f"{path.name} has committed outputs: strip them (make strip)"
    )
    first = code[0].source
    assert "google.colab" in first and "pip" in first and "environment_report" in first, (
        "the first code cell must detect Colab, install the package there and print the environment"
    )
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged 'parameters'"
    declared = papermill.inspect_notebook(str(path))
    for name in smoke_parameters(Path("x")):
        assert name in declared, f"parameters cell does not declare {name}"
        assert declared[name]["help"], f"parameter {name} has no explanatory comment"
    assert declared["SMOKE"]["default"] == "False" and declared["SMOKE"]["inferred_type_name"] == "bool"
    assert path.stem in CHECKS, f"add a metrics check for {path.stem} to tests/test_notebooks.py"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_mode(path: Path, smoke_runs):
    # executed once per session (conftest.SmokeRuns, SMOKE=True); the site test renders the same executed copies
    executed = smoke_runs.run(path)
    assert not error_outputs(executed), f"{path.name} shows errors:\n" + "\n".join(error_outputs(executed))
    out_dir = smoke_runs.root / path.stem
    metrics = json.loads((out_dir / "metrics.json").read_text())
    # other JSON tables a notebook writes (e.g. 02's results.json) are checked too
    metrics["_files"] = {p.name: json.loads(p.read_text()) for p in out_dir.glob("*.json") if p.name != "metrics.json"}
    CHECKS[path.stem](metrics)
    _check_exercises(path.stem, metrics)
