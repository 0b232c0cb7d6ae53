"""An interactive style and shape editor: pick A and B, the classes, the operation and α.

Same two layers as the attention inspector, so that tests need no kernel and no browser:

* ``StyleShapeEditor`` holds the selection, runs one edit per change (``state.forwards`` counts
  them) and draws A, B, their masks and the result to PNG bytes.
* ``EditorApp`` wires ipywidgets controls to it and shows the PNG in an ``ipywidgets.Image``.

Operations (docs/architecture.md#editing-operations; ``t`` is the amount of B, so t = 0 shows A and t = 1 the full
edit):

    reconstruct          A from its own style and mask
    style: global        every style code from B
    style: classes       the chosen classes' codes from B
    style: interpolate   the chosen classes' codes blended, (1 - t)·s_A + t·s_B
    shape: mask          the chosen classes' mask channels from B (SPADE family: a composed mask)
    shape: tokens        the chosen classes' mask tokens from B, no mask made (CA²-SIS only)
    shape: interpolate   tokens blended between A and A-with-B's-shape (CA²-SIS only)
    noise: sample        A's layout with styles from the mapping network, seed = the seed box

Each operation is a plain function ``EDITS[name](model, request)`` of one ``EditRequest`` (A, B,
classes, t, seed), which calls the ``ca2sis_lib.editing`` function it names.

    app = build_editor(model, samples, class_names=TOY_CLASSES, palette=TOY_PALETTE)
    app                                              # shows the controls and the view
    app.editor.set(operation="style: classes", classes=(8,), b=3)   # the same, from code
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import editing
from ..contract import check_samples
from ..masks import colour_labels
from ..models.interface import SemanticGenerator, is_cross_attention, model_device
from .app import WIDGET_STYLE, PanelApp
from .figures import clean, figure_to_png, new_figure, save_figure, to_rgb
from .record import default_palette

Sample = dict[str, Any]  # {"image": (3, H, W) in [-1, 1], "label": (H, W) long, "name": str}


@dataclass(frozen=True)
class EditRequest:
    """One edit: samples A and B as batches of one (on the model's device), the classes, t and the seed."""

    image_a: Tensor  # (1, 3, H, W) in [-1, 1]
    label_a: Tensor  # (1, H, W)
    image_b: Tensor
    label_b: Tensor
    classes: list[int]  # the classes to edit (unused by reconstruct, global style and noise)
    t: float = 1.0  # amount of B in the interpolations: 0 = A, 1 = the full edit
    seed: int = 0  # the noise seed of "noise: sample"


# Each operation: (model, request) -> (1, 3, H, W), the editing function it names, nothing more.
def _reconstruct(m: SemanticGenerator, r: EditRequest) -> Tensor:
    return editing.reconstruct(m, r.image_a, r.label_a)


def _style_global(m: SemanticGenerator, r: EditRequest) -> Tensor:
    return editing.transfer_style(m, r.image_a, r.label_a, r.image_b, r.label_b)


def _style_classes(m: SemanticGenerator, r: EditRequest) -> Tensor:
    return editing.transfer_style(m, r.image_a, r.label_a, r.image_b, r.label_b, r.classes)


def _style_interpolate(m: SemanticGenerator, r: EditRequest) -> Tensor:
    return editing.interpolate_style(m, r.image_a, r.label_a, r.image_b, r.label_b, [1.0 - r.t], r.classes)[0]


def _shape_mask(m: SemanticGenerator, r: EditRequest) -> Tensor:
    return editing.transfer_shape_with_mask(m, r.image_a, r.label_a, r.label_b, r.classes)


def _shape_tokens(m: SemanticGenerator, r: EditRequest) -> Tensor:
    return editing.transfer_shape_without_mask(m, r.image_a, r.label_a, r.image_b, r.label_b, r.classes,
                                               with_style=False)


def _shape_interpolate(m: SemanticGenerator, r: EditRequest) -> Tensor:
    return editing.interpolate_shape(m, r.image_a, r.label_a, r.label_b, r.classes, [1.0 - r.t])[0]


def _noise_sample(m: SemanticGenerator, r: EditRequest) -> Tensor:
    return editing.generate_from_noise(m, r.label_a, 1, r.seed)[0]


EDITS: dict[str, Callable[[SemanticGenerator, EditRequest], Tensor]] = {
    "reconstruct": _reconstruct,
    "style: global": _style_global,
    "style: classes": _style_classes,
    "style: interpolate": _style_interpolate,
    "shape: mask": _shape_mask,
    "shape: tokens": _shape_tokens,
    "shape: interpolate": _shape_interpolate,
    "noise: sample": _noise_sample,
}
OPERATIONS = tuple(EDITS)
NEEDS_CLASSES = {"style: classes", "style: interpolate", "shape: mask", "shape: tokens", "shape: interpolate"}
CA2SIS_ONLY = {"shape: tokens", "shape: interpolate", "noise: sample"}


@dataclass
class EditorState:
    a: int = 0
    b: int = 1
    classes: tuple[int, ...] = ()
    operation: str = "style: classes"
    t: float = 1.0  # amount of B in the interpolations
    seed: int = 0
    forwards: int = 0  # edits run so far (one per change that affects the result)
    renders: int = 0


class StyleShapeEditor:
    """Selection, edit and drawing, without any widget."""

    def __init__(self, model: SemanticGenerator, samples: Sequence[Sample], class_names: Sequence[str] | None = None,
                 palette: np.ndarray | Sequence[Sequence[int]] | None = None, dpi: int = 80) -> None:
        check_samples(model, samples, 2, "the editor (two samples: A and B)")
        self.model = model.eval()
        self.samples = samples
        k = model.config.num_classes
        self.class_names = list(class_names) if class_names is not None else [f"class {c}" for c in range(k)]
        if len(self.class_names) != k:
            raise ValueError(f"{len(self.class_names)} class names for a model with {k} classes")
        self.palette = default_palette(k) if palette is None else np.asarray(palette, dtype=np.uint8)
        self.is_ca2sis = is_cross_attention(model)
        self.dpi = dpi
        self.state = EditorState()
        self.result: Tensor | None = None  # (3, H, W) in [-1, 1]
        self.png = b""
        self.render_seconds = 0.0
        self._key: tuple | None = None
        first_class = self.shared_classes(0, 1)
        self.set(classes=tuple(first_class[-1:]))

    def operations(self) -> list[str]:
        """The operations this model can do (mask-token edits and noise need CA²-SIS)."""
        return [op for op in OPERATIONS if self.is_ca2sis or op not in CA2SIS_ONLY]

    def shared_classes(self, a: int, b: int) -> list[int]:
        """Classes visible in both samples, background excluded (what a class edit can use)."""
        la, lb = self.samples[a]["label"], self.samples[b]["label"]
        return [c for c in range(1, len(self.class_names)) if bool((la == c).any()) and bool((lb == c).any())]

    def set(self, **changes: Any) -> Tensor:
        """Change any of a, b, classes, operation, t, seed; runs the edit if the result can change.

        Everything is checked first: a bad value raises ``ValueError`` and leaves the state as it was.
        """
        unknown = set(changes) - {"a", "b", "classes", "operation", "t", "seed"}
        if unknown:
            raise ValueError(f"unknown editor controls {sorted(unknown)}")
        s = self.state
        a, b = int(changes.get("a", s.a)), int(changes.get("b", s.b))
        for name, index in (("A", a), ("B", b)):
            if not 0 <= index < len(self.samples):
                raise ValueError(f"sample {name}={index} is outside [0, {len(self.samples)})")
        operation = changes.get("operation", s.operation)
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; choose from {list(OPERATIONS)}")
        if operation not in self.operations():
            raise ValueError(f"{operation!r} needs CA²-SIS (mask tokens / a mapping network); "
                             "this SPADE-family model can do " + ", ".join(self.operations()))
        classes = tuple(sorted(int(c) for c in changes.get("classes", s.classes)))
        t = float(changes.get("t", s.t))
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"t (the amount of B) must be in [0, 1], got {t}")
        seed = int(changes.get("seed", s.seed))
        if operation in NEEDS_CLASSES:
            if not classes:
                raise ValueError(f"{operation!r} needs at least one class")
            missing = [self.class_names[c] for c in classes if not bool((self.samples[b]["label"] == c).any())]
            if missing:
                raise ValueError(f"B has no {', '.join(missing)}: pick classes B shows, or another B")
        s.a, s.b, s.classes, s.operation, s.t, s.seed = a, b, classes, operation, t, seed
        self._run()
        return self.result

    def _run(self) -> None:
        s = self.state
        key = (s.a, s.b, s.classes if s.operation in NEEDS_CLASSES else (), s.operation,
               s.t if "interpolate" in s.operation else None, s.seed if s.operation == "noise: sample" else None)
        if key != self._key:
            self.result = EDITS[s.operation](self.model, self.request())[0].cpu()
            self.state.forwards += 1
            self._key = key
        self.redraw()

    def request(self) -> EditRequest:
        """The current selection as an edit request, A and B on the model's device."""
        s, device = self.state, model_device(self.model)
        A, B = self.samples[s.a], self.samples[s.b]
        a, la, b, lb = (x[None].to(device) for x in (A["image"], A["label"], B["image"], B["label"]))
        return EditRequest(a, la, b, lb, list(s.classes), s.t, s.seed)

    def title(self) -> str:
        s = self.state
        names = ", ".join(self.class_names[c] for c in s.classes) if s.operation in NEEDS_CLASSES else ""
        amount = f", t={s.t:.2f}" if "interpolate" in s.operation else ""
        seed = f", seed {s.seed}" if s.operation == "noise: sample" else ""
        return f"{s.operation}" + (f" [{names}]" if names else "") + amount + seed

    def figure(self):
        s = self.state
        A, B = self.samples[s.a], self.samples[s.b]
        fig, axes = new_figure(1, 5, panel=(2.0, 2.2))
        panels = [(to_rgb(A["image"]), f"A: {A.get('name', s.a)}"), (colour_labels(A["label"], self.palette), "A mask"),
                  (to_rgb(B["image"]), f"B: {B.get('name', s.b)}"), (colour_labels(B["label"], self.palette), "B mask"),
                  (to_rgb(self.result), "result")]
        for ax, (picture, title) in zip(axes[0], panels):
            ax.imshow(picture, interpolation="nearest")
            clean(ax, title)
        fig.suptitle(self.title(), fontsize=11)
        return fig

    def redraw(self) -> None:
        start = time.perf_counter()
        self.png = figure_to_png(self.figure(), dpi=self.dpi)
        self.state.renders += 1
        self.render_seconds = time.perf_counter() - start

    def export(self, path: str | Path, dpi: int = 150) -> Path:
        """Save the current panel (.png, .svg or .pdf, by suffix)."""
        return save_figure(self.figure(), path, dpi=dpi)


class EditorApp(PanelApp):
    """ipywidgets controls around a ``StyleShapeEditor``; display it by ending a cell with it."""

    counter_label = "edits run"

    def __init__(self, editor: StyleShapeEditor, export_path: str | Path = "edit.png") -> None:
        import ipywidgets as widgets

        self.editor = self.panel = editor
        s = editor.state
        names = [(str(x.get("name", i)), i) for i, x in enumerate(editor.samples)]
        self.controls: dict[str, widgets.ValueWidget] = {
            "a": widgets.Dropdown(options=names, value=s.a, description="A", **WIDGET_STYLE),
            "b": widgets.Dropdown(options=names, value=s.b, description="B", **WIDGET_STYLE),
            "operation": widgets.Dropdown(options=editor.operations(), value=s.operation, description="operation",
                                          **WIDGET_STYLE),
            "classes": widgets.SelectMultiple(options=[(f"{c}: {n}", c) for c, n in enumerate(editor.class_names)],
                                              value=s.classes, rows=6, description="classes", **WIDGET_STYLE),
            "t": widgets.FloatSlider(value=s.t, min=0.0, max=1.0, step=0.05, description="t (amount of B)",
                                     continuous_update=False, **WIDGET_STYLE),
            "seed": widgets.BoundedIntText(value=s.seed, min=0, max=2**31 - 1, description="noise seed",
                                           **WIDGET_STYLE),
        }
        c = self.controls
        rows = [widgets.HBox([c["a"], c["b"], c["operation"]]),
                widgets.HBox([c["classes"], widgets.VBox([c["t"], c["seed"]])])]
        self._build(rows, export_path, "ca2sis-editor")
        self._show()


def build_editor(model: SemanticGenerator, samples: Sequence[Sample], class_names: Sequence[str] | None = None,
                 palette: np.ndarray | Sequence[Sequence[int]] | None = None,
                 export_path: str | Path = "edit.png", dpi: int = 80) -> EditorApp:
    """The editor app for ``model`` on ``samples`` (A = sample 0, B = sample 1 to start)."""
    with torch.no_grad():
        editor = StyleShapeEditor(model, samples, class_names, palette, dpi=dpi)
    return EditorApp(editor, export_path)
