"""Export the shipped toy models as the explorer's ONNX graphs, verify them against torch, and
write them with their manifest::

    python -m ca2sis_lib.explorer.export --out site/explorer/models     # after `make checkpoints`

Each graph of :mod:`ca2sis_lib.explorer.graphs` is exported with torch's ``torch.export``-based
exporter (``dynamo=True``; it needs ``onnxscript``), its weights stored as float16 where that is
lossless (:mod:`ca2sis_lib.explorer.half_storage`), and run under onnxruntime against the model's
own public methods on toy faces and on random inputs (:mod:`ca2sis_lib.explorer.verify`) before the
manifest is written. The manifest
records, per model, the SHA-256 of the shipped weights it was exported from and
``EXPORT_VERSION``; :func:`stale_reasons` compares them with the weights and the code of today, so
a retrained model (or a changed export) without a new export is caught by the tests and refused
by the site's build.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ..checkpoint_io import sha256
from ..loading import load_model
from ..models.interface import is_cross_attention
from ..shipped import SHIPPED_DIR
from .graphs import GraphSpec, graph_specs
from .half_storage import store_weights_in_half
from .verify import TOLERANCE, face_inputs, verify_model

EXPORT_VERSION = 1  # bump when the graphs' cut, names or arithmetic change: every export is then stale
OPSET = 18
MANIFEST = "manifest.json"
MODELS = {"ca2sis": "ca2sis_tiny_toy", "sean": "sean_tiny_toy"}  # the page's name -> shipped model


# -- export ---------------------------------------------------------------------------------------
def export_graph(spec: GraphSpec, path: Path) -> dict[str, Any]:
    """Export one graph to ``path`` (float16 storage where lossless); returns its manifest entry."""
    import onnx

    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:  # no_grad: the feed-forward's plain path
        program = torch.onnx.export(spec.module.eval(), spec.examples, dynamo=True, opset_version=OPSET,
                                    input_names=list(spec.inputs), output_names=list(spec.outputs), optimize=True,
                                    verbose=False)
        program.save(str(Path(tmp) / "graph.onnx"))
        graph = onnx.load(str(Path(tmp) / "graph.onnx"))
    report = store_weights_in_half(graph)
    strip_metadata(graph)
    onnx.checker.check_model(graph, full_check=True)
    graph.producer_name = "ca2sis_lib.explorer.export"
    graph.doc_string = f"{spec.name}, export version {EXPORT_VERSION}"
    path.write_bytes(graph.SerializeToString())
    return {"file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size,
            "inputs": {name: list(t.shape) for name, t in zip(spec.inputs, spec.examples)},
            "outputs": list(spec.outputs),
            "weights_float16": report.halved, "weights_float32": report.kept,
            "float32_weight_bytes": report.kept_bytes}


def strip_metadata(model: Any) -> None:
    """Drop the exporter's per-node notes (source lines and stack traces: a fifth of a graph's bytes)."""
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for info in (*model.graph.value_info, *model.graph.input, *model.graph.output):
        del info.metadata_props[:]
        info.doc_string = ""
    del model.metadata_props[:]


def model_description(model: torch.nn.Module) -> dict[str, Any]:
    """What the page needs to know about a model: sizes, and its attention layers (CA²-SIS)."""
    c = model.config
    description = {"family": "ca2sis" if is_cross_attention(model) else "sean", "image_size": c.image_size,
                   "num_classes": c.num_classes, "style_code_dim": c.style_code_dim}
    if is_cross_attention(model):
        size = c.token_size
        layers = []
        for name, stage in zip(model.attention_layer_names(), c.stages):
            size *= 2 if stage.upsample else 1
            layers.append({"name": name, "size": size, "heads": stage.heads, "self_attention": stage.self_attention})
        description.update(exclude_background=c.exclude_background, embed_classes=c.embed_classes,
                           token_length=c.token_size**2, layers=layers)
    return description


def export_model(key: str, out: Path) -> dict[str, Any]:
    """Export, verify and describe one shipped model; returns its manifest entry."""
    shipped = MODELS[key]
    weights = SHIPPED_DIR / f"{shipped}.pt"
    model = load_model(shipped).eval()
    image, one_hot = face_inputs(1, model.config.image_size, model.config.num_classes)[0]
    graphs = {}
    for spec in graph_specs(model, image, one_hot):
        graphs[spec.name] = export_graph(spec, out / f"{key}_{spec.name}.onnx")
    errors = verify_model(model, out, {name: g["file"] for name, g in graphs.items()})
    return {"shipped": shipped, "weights_sha256": sha256(weights), **model_description(model),
            "graphs": graphs, "max_abs_error_vs_torch": errors}


def export_all(out: str | Path) -> dict[str, Any]:
    """Every model of :data:`MODELS` into ``out`` (created), with ``manifest.json``; returns the manifest."""
    import onnx
    import onnxruntime

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    manifest = {"export_version": EXPORT_VERSION, "opset": OPSET, "torch": torch.__version__, "onnx": onnx.__version__,
                "verified_with_onnxruntime": onnxruntime.__version__, "tolerance": TOLERANCE,
                "models": {key: export_model(key, out) for key in MODELS}}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"exported {len(MODELS)} models to {out} in {time.perf_counter() - start:.0f} s")
    return manifest


# -- is an export current? ------------------------------------------------------------------------
def stale_reasons(folder: str | Path) -> list[str]:
    """Why the export in ``folder`` no longer matches the shipped weights and this code (empty: it does)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        return [f"{path} is missing"]
    manifest = json.loads(path.read_text())
    reasons = []
    if manifest.get("export_version") != EXPORT_VERSION:
        reasons.append(f"exported with version {manifest.get('export_version')} of the export code, which is now "
                       f"at version {EXPORT_VERSION}")
    models = manifest.get("models", {})
    for key, shipped in MODELS.items():
        entry = models.get(key)
        if entry is None:
            reasons.append(f"model {key!r} ({shipped}) was not exported")
            continue
        weights = SHIPPED_DIR / f"{shipped}.pt"
        if entry.get("weights_sha256") != sha256(weights):
            reasons.append(f"{weights.name} changed since the export (SHA-256 {sha256(weights)[:12]}…, the export "
                           f"was made from {str(entry.get('weights_sha256'))[:12]}…)")
        for graph in entry.get("graphs", {}).values():
            file = folder / graph["file"]
            if not file.exists():
                reasons.append(f"{file} is missing")
            elif sha256(file) != graph["sha256"]:
                reasons.append(f"{file} differs from the file the manifest records (edited or corrupted)")
    return reasons


def check_current(folder: str | Path) -> None:
    """Raise ``RuntimeError`` with every reason and the command that re-exports, if the export is stale."""
    reasons = stale_reasons(folder)
    if reasons:
        raise RuntimeError(f"the explorer's ONNX export in {folder} is out of date: " + "; ".join(reasons)
                           + f". Re-export it with `python -m ca2sis_lib.explorer.export --out {folder}` "
                           "(needs pip install -e '.[course]') and commit the result.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ca2sis_lib.explorer.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for the .onnx files and manifest.json "
                        "(the site's is site/explorer/models)")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    export_all(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
