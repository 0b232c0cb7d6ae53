"""The explorer's ONNX graphs (site/explorer/models/) are the shipped models, and stay so.

* Every committed graph, run by onnxruntime, gives what the library's own methods give in torch
  (``encode_style``, ``embed_mask``, ``decode``) on toy faces and on random inputs: image, styles
  and tokens within 1e-4, attention logits within 1e-3 (max abs).
* The export is current: the manifest names the SHA-256 of today's shipped weights and today's
  ``EXPORT_VERSION``; a retrained model or an edited graph is reported with the command that
  re-exports, and the site's build refuses it.
* Float16 storage loses nothing; the page's CA²-SIS download stays within 8 MB; the library does
  not import onnx or onnxruntime unless an export or a check runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script

from ca2sis_lib.explorer import export, verify
from ca2sis_lib.loading import load_model
from ca2sis_lib.masks import labels_to_one_hot

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "site" / "explorer" / "models"
CA2SIS_DOWNLOAD_LIMIT = 8_000_000  # bytes: what the page loads before it is interactive

onnx = pytest.importorskip("onnx", reason="pip install -e '.[test]' installs onnx and onnxruntime")
ort = pytest.importorskip("onnxruntime", reason="pip install -e '.[test]' installs onnx and onnxruntime")


def manifest() -> dict:
    return json.loads((MODELS_DIR / export.MANIFEST).read_text())


@pytest.mark.parametrize("key", sorted(export.MODELS))
def test_each_graph_matches_the_library_in_torch(key: str):
    entry = manifest()["models"][key]
    model = load_model(export.MODELS[key]).eval()
    files = {name: graph["file"] for name, graph in entry["graphs"].items()}
    errors = verify.verify_model(model, MODELS_DIR, files, faces=2, randoms=2)  # raises past the tolerance
    assert set(errors) == {"style_encoder", "decoder"} | ({"mask_embedder"} if key == "ca2sis" else set())
    assert errors["decoder"]["image"] <= 1e-4
    for layer in entry.get("layers", []):
        assert errors["decoder"][layer["name"]] <= 1e-3


@pytest.mark.parametrize("key", sorted(export.MODELS))
def test_the_graphs_take_and_give_what_the_manifest_says(key: str):
    from ca2sis_lib.explorer.graphs import graph_specs

    entry = manifest()["models"][key]
    model = load_model(export.MODELS[key]).eval()
    image, one_hot = verify.face_inputs(1, model.config.image_size, model.config.num_classes)[0]
    for spec in graph_specs(model, image, one_hot):
        session = verify.session_for(MODELS_DIR / entry["graphs"][spec.name]["file"])
        assert [i.name for i in session.get_inputs()] == list(spec.inputs)
        assert [o.name for o in session.get_outputs()] == list(spec.outputs) == entry["graphs"][spec.name]["outputs"]
        assert {i.name: i.shape for i in session.get_inputs()} == entry["graphs"][spec.name]["inputs"]
    if key == "ca2sis":
        assert [layer["name"] for layer in entry["layers"]] == model.attention_layer_names()
        assert [layer["heads"] for layer in entry["layers"]] == [s.heads for s in model.config.stages]


def test_the_committed_export_is_current():
    assert export.stale_reasons(MODELS_DIR) == []


def copy_of_the_export(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    shutil.copytree(MODELS_DIR, folder)
    return folder


def test_a_retrained_model_makes_the_export_stale(tmp_path: Path, monkeypatch):
    shipped = tmp_path / "weights"
    shutil.copytree(export.SHIPPED_DIR, shipped)
    with open(shipped / "sean_tiny_toy.pt", "ab") as handle:  # any change of the file: a new training run
        handle.write(b"\0")
    monkeypatch.setattr(export, "SHIPPED_DIR", shipped)
    reasons = export.stale_reasons(MODELS_DIR)
    assert len(reasons) == 1 and "sean_tiny_toy.pt changed since the export" in reasons[0]
    with pytest.raises(RuntimeError, match=r"python -m ca2sis_lib\.explorer\.export --out"):
        export.check_current(MODELS_DIR)


def test_new_export_code_or_an_edited_graph_makes_the_export_stale(tmp_path: Path, monkeypatch):
    folder = copy_of_the_export(tmp_path)
    monkeypatch.setattr(export, "EXPORT_VERSION", export.EXPORT_VERSION + 1)
    assert any("version" in r for r in export.stale_reasons(folder))
    monkeypatch.undo()
    with open(folder / "ca2sis_decoder.onnx", "ab") as handle:
        handle.write(b"\0")
    (folder / "sean_style_encoder.onnx").unlink()
    reasons = export.stale_reasons(folder)
    assert any("ca2sis_decoder.onnx differs" in r for r in reasons)
    assert any("sean_style_encoder.onnx is missing" in r for r in reasons)
    (folder / export.MANIFEST).unlink()
    assert export.stale_reasons(folder) == [f"{folder / export.MANIFEST} is missing"]


def test_the_site_build_refuses_a_stale_export(tmp_path: Path, monkeypatch):
    build_explorer = load_script("scripts/build_explorer.py")
    folder = copy_of_the_export(tmp_path)
    data = json.loads((folder / export.MANIFEST).read_text())
    data["models"]["ca2sis"]["weights_sha256"] = "0" * 64
    (folder / export.MANIFEST).write_text(json.dumps(data))
    monkeypatch.setattr(build_explorer, "MODELS", folder)
    with pytest.raises(SystemExit, match="ca2sis_tiny_toy.pt changed since the export"):
        build_explorer.build_explorer(tmp_path / "out")
    assert not (tmp_path / "out").exists(), "nothing is written for a stale export"


def test_float16_storage_is_lossless_and_keeps_what_is_not_half(tmp_path: Path):
    from onnx import TensorProto, helper, numpy_helper

    from ca2sis_lib.explorer.half_storage import HALF_SUFFIX, store_weights_in_half

    rng = np.random.default_rng(0)
    exact = rng.standard_normal((64, 32)).astype(np.float16).astype(np.float32)  # a shipped weight: half values
    inexact = (rng.standard_normal((32, 64)) / 3).astype(np.float32)  # e.g. a weight divided by its spectral norm
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w_exact"], ["a"]), helper.make_node("MatMul", ["a", "w_inexact"], ["y"])],
        "two", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 64])],
        [numpy_helper.from_array(exact, "w_exact"), numpy_helper.from_array(inexact, "w_inexact")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = rng.standard_normal((4, 64)).astype(np.float32)
    before = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    report = store_weights_in_half(model)
    onnx.checker.check_model(model, full_check=True)
    stored = {init.name: init.data_type for init in model.graph.initializer}
    assert stored == {"w_exact" + HALF_SUFFIX: TensorProto.FLOAT16, "w_inexact": TensorProto.FLOAT}
    assert (report.halved, report.kept) == (1, 1)
    after = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    assert np.array_equal(before, after), "a widened float16 weight must be the float32 it came from"


def test_the_shipped_weights_are_stored_as_half_and_the_page_download_stays_small():
    models = manifest()["models"]
    for entry in models.values():
        for graph in entry["graphs"].values():
            assert graph["float32_weight_bytes"] < 100_000, f"{graph['file']} keeps large float32 weights"
    ca2sis = sum(g["bytes"] for g in models["ca2sis"]["graphs"].values())
    assert ca2sis <= CA2SIS_DOWNLOAD_LIMIT, f"the CA²-SIS graphs are {ca2sis / 1e6:.1f} MB"
    for entry in models.values():
        for graph in entry["graphs"].values():
            assert (MODELS_DIR / graph["file"]).stat().st_size == graph["bytes"]


def test_the_faces_are_the_toy_test_split_as_written_to_disk():
    from ca2sis_lib.data.common import to_uint8
    from ca2sis_lib.data.toy import render_sample, sample_scene
    from ca2sis_lib.explorer.samples import decode, samples_document

    document = samples_document(count=3)
    assert document["classes"][8] == "hair" and len(document["palettes"]["colour-blind safe"]) == 12
    for index, face in enumerate(document["faces"]):
        image, labels = render_sample(*sample_scene(index, 0, "test"), 64)
        assert np.array_equal(decode(face["image"], (64, 64, 3)), to_uint8(image))
        assert np.array_equal(decode(face["labels"], (64, 64)), labels)


def test_the_library_leaves_onnx_alone_until_an_export_runs():
    code = ("import sys, ca2sis_lib, ca2sis_lib.explorer.graphs, ca2sis_lib.explorer.half_storage, "
            "ca2sis_lib.explorer.samples\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in {'onnx', 'onnxruntime', 'onnxscript'})\n"
            "assert not loaded, loaded")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.returncode == 0, done.stderr[-2000:]


def test_reference_outputs_are_the_public_methods(tmp_path: Path):
    """The comparison's torch side is the library's API, so the graphs are checked against what students call."""
    model = load_model("ca2sis_tiny_toy").eval()
    image, one_hot = verify.face_inputs(1, 64, 12)[0]
    reference = verify.reference_outputs(model, image, one_hot)
    labels = one_hot.argmax(1)
    with torch.no_grad():
        out = model(image, labels, return_attention=True)
    assert torch.equal(reference["decoder"]["image"], out.image)
    assert torch.equal(reference["decoder"]["cross@64"], out.attention["cross@64"])
    assert torch.equal(labels_to_one_hot(labels, 12), one_hot)


def test_the_site_keeps_files_staged_with_the_docs_on_the_site():
    """docs/colab_site_app.md shows the explorer's screenshot (docs/images/explorer.png): a file under docs/
    is staged with the pages, so its link stays relative instead of pointing at GitHub (an image there breaks)."""
    build_site = load_script("scripts/build_site.py")
    page = ROOT / "docs" / "claims.md"
    for target in ("images/explorer.png", "data/02_spade_vs_cross_attention.metrics.json"):
        text = f"![the explorer]({target})"
        assert build_site.github_links(text, page, set(), "owner/name", "main") == text
    linked = build_site.github_links("[bench](../benchmarks/results/explorer_browser.md)", page, set(), "o/n", "main")
    assert linked == "[bench](https://github.com/o/n/blob/main/benchmarks/results/explorer_browser.md)"
