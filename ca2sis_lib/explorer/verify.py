"""Check exported graphs against the library: each graph, run by onnxruntime, must give what the
model's public methods give in torch (``encode_style``, ``embed_mask``, ``decode``) on the explorer's
toy faces and on random inputs, within :data:`TOLERANCE` (max abs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..masks import labels_to_one_hot
from ..models.interface import is_cross_attention
from .samples import face_samples

TOLERANCE = {"image": 1e-4, "logits": 1e-3, "codes": 1e-4}  # max |onnxruntime - torch| a graph may show


def face_inputs(count: int, size: int, num_classes: int) -> list[tuple[Tensor, Tensor]]:
    """The explorer's own toy faces as (image (1, 3, H, W) in [-1, 1], one_hot (1, K, H, W))."""
    inputs = []
    for face in face_samples(count, size):
        image = torch.from_numpy(face.image).float().div(127.5).sub(1.0).permute(2, 0, 1)[None]
        one_hot = labels_to_one_hot(torch.from_numpy(face.labels).long()[None], num_classes)
        inputs.append((image, one_hot))
    return inputs


def random_inputs(count: int, size: int, num_classes: int, seed: int = 0) -> list[tuple[Tensor, Tensor]]:
    """Uniform images in [-1, 1] and blocky random label maps (4×4 blocks: every class can be present)."""
    g = torch.Generator().manual_seed(seed)
    inputs = []
    for _ in range(count):
        image = torch.rand(1, 3, size, size, generator=g) * 2 - 1
        labels = torch.randint(0, num_classes, (1, size // 4, size // 4), generator=g)
        labels = labels.repeat_interleave(4, 1).repeat_interleave(4, 2)
        inputs.append((image, labels_to_one_hot(labels, num_classes)))
    return inputs


@torch.no_grad()
def reference_outputs(model: torch.nn.Module, image: Tensor, one_hot: Tensor,
                      random_codes: bool = False, seed: int = 0) -> dict[str, dict[str, Tensor]]:
    """graph -> {input or output name: tensor}, from the model's public methods (not the graph modules).

    ``random_codes``: the decoder is fed random tokens and styles instead of the encoders' outputs.
    """
    styles = model.encode_style(image, one_hot)  # (1, K, D)
    out: dict[str, dict[str, Tensor]] = {"style_encoder": {"image": image, "one_hot": one_hot, "styles": styles}}
    g = torch.Generator().manual_seed(seed)
    if random_codes:
        styles = torch.rand(styles.shape, generator=g) * 2 - 1  # the encoder's codes are tanh outputs
    if is_cross_attention(model):
        tokens = model.embed_mask(one_hot)  # (1, K', L)
        out["mask_embedder"] = {"one_hot": one_hot, "tokens": tokens}
        if random_codes:
            tokens = torch.randn(tokens.shape, generator=g)
        decoded = model.decode(tokens, styles, return_attention=True)
        out["decoder"] = {"tokens": tokens, "styles": styles, "image": decoded.image, **decoded.attention}
    else:
        out["decoder"] = {"one_hot": one_hot, "styles": styles, "image": model.decode(one_hot, styles).image}
    return out


def tolerance(output: str) -> float:
    return TOLERANCE["image"] if output == "image" else TOLERANCE["logits"] if "@" in output else TOLERANCE["codes"]


def compare_graph(session: Any, inputs: tuple[str, ...], outputs: tuple[str, ...],
                  reference: dict[str, Tensor]) -> dict[str, float]:
    """Run an onnxruntime ``session`` on the reference's inputs: output name -> max |onnxruntime - torch|."""
    feed = {name: reference[name].numpy() for name in inputs}
    results = session.run(list(outputs), feed)
    return {name: float(np.abs(result - reference[name].numpy()).max()) for name, result in zip(outputs, results)}


def session_for(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def verify_model(model: torch.nn.Module, folder: Path, files: dict[str, str], faces: int = 3,
                 randoms: int = 3) -> dict[str, dict[str, float]]:
    """graph -> output -> the largest max-abs error over toy faces and random inputs (and random codes
    for the decoder). Raises ``AssertionError`` naming the output that exceeds :data:`TOLERANCE`."""
    size, k = model.config.image_size, model.config.num_classes
    cases = [(i, o, False) for i, o in face_inputs(faces, size, k)]
    cases += [(i, o, r) for i, o in random_inputs(randoms, size, k) for r in (False, True)]
    sessions = {graph: session_for(folder / file) for graph, file in files.items()}
    worst: dict[str, dict[str, float]] = {}
    for n, (image, one_hot, random_codes) in enumerate(cases):
        reference = reference_outputs(model, image, one_hot, random_codes, seed=n)
        for graph, session in sessions.items():
            names = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
            errors = compare_graph(session, tuple(names[0]), tuple(names[1]), reference[graph])
            for output, error in errors.items():
                worst.setdefault(graph, {})[output] = max(error, worst.get(graph, {}).get(output, 0.0))
                if error > tolerance(output):
                    raise AssertionError(f"{folder / files[graph]}: output {output!r} differs from torch by "
                                         f"{error:.2e} (tolerance {tolerance(output):.0e}) on case {n}")
    return worst
