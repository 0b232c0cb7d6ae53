"""An interactive style and shape editor: pick A and B, the classes, the operation and α.

Same two layers as the attention inspector, so that tests need no kernel and no browser:

* ``StyleShapeEditor`` holds the selection, runs one edit per change (``state.forwards`` counts
  them) and draws A, B, their masks and the result to PNG bytes.
* ``EditorApp`` wires ipywidgets controls to it and shows the PNG in an ``ipywidgets.Image``.

Operations (spec §6; ``t`` is the amount of B, so t = 0 shows A and t = 1 the full edit):

    reconstruct          A from its own style and mask
    style: global        every style code from B
    style: classes       the chosen classes' codes from B
    style: interpolate   the chosen classes' codes blended, (1 - t)·s_A + t·s_B
    shape: mask          the chosen classes' mask channels from B (SPADE family: a composed mask)
    shape: tokens        the chosen classes' mask tokens from B, no mask made (CA²-SIS only)
    shape: interpolate   tokens blended between A and A-with-B's-shape (CA²-SIS only)
    noise: sample        A's layout with styles from the mapping network, seed = the seed box

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
from torch import Tensor, nn

from .. import editing
from .figures import clean, colour_labels, figure_to_png, new_figure, save_figure, to_rgb
from .panel_app import PanelApp
from .record import default_palette

Sample = dict[str, Any]  # {"image": (3, H, W) in [-1, 1], "label": (H, W) long, "name": str}


def _one(x: Tensor) -> Tensor:
    return x[None]


def _edit_fns() -> dict[str, Callable[..., Tensor]]:
    """operation -> fn(model, image_a, label_a, image_b, label_b, classes, t, seed) -> (1, 3, H, W)."""
    return {
        "reconstruct": lambda m, a, la, b, lb, cls, t, seed: editing.reconstruct(m, a, la),
        "style: global": lambda m, a, la, b, lb, cls, t, seed: editing.transfer_style(m, a, la, b, lb),
        "style: classes": lambda m, a, la, b, lb, cls, t, seed: editing.transfer_style(m, a, la, b, lb, cls),
        "style: interpolate": lambda m, a, la, b, lb, cls, t, seed: editing.interpolate_style(
            m, a, la, b, lb, [1.0 - t], cls)[0],
        "shape: mask": lambda m, a, la, b, lb, cls, t, seed: editing.transfer_shape_with_mask(m, a, la, lb, cls),
        "shape: tokens": lambda m, a, la, b, lb, cls, t, seed: editing.transfer_shape_without_mask(
            m, a, la, b, lb, cls, with_style=False),
        "shape: interpolate": lambda m, a, la, b, lb, cls, t, seed: editing.interpolate_shape(
            m, a, la, lb, cls, [1.0 - t])[0],
        "noise: sample": lambda m, a, la, b, lb, cls, t, seed: editing.generate_from_noise(m, la, 1, seed)[0],
    }


OPERATIONS = tuple(_edit_fns())
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

    def __init__(self, model: nn.Module, samples: Sequence[Sample], class_names: Sequence[str] | None = None,
                 palette: np.ndarray | Sequence[Sequence[int]] | None = None, dpi: int = 80) -> None:
        if len(samples) < 2:
            raise ValueError("the editor needs at least two samples (A and B)")
        self.model = model.eval()
        self.samples = samples
        k = model.config.num_classes
        self.class_names = list(class_names) if class_names is not None else [f"class {c}" for c in range(k)]
        if len(self.class_names) != k:
            raise ValueError(f"{len(self.class_names)} class names for a model with {k} classes")
        self.palette = default_palette(k) if palette is None else np.asarray(palette, dtype=np.uint8)
        self.is_ca2sis = hasattr(model, "embed_mask")
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
            device = next(self.model.parameters()).device
            A, B = self.samples[s.a], self.samples[s.b]
            args = [_one(x).to(device) for x in (A["image"], A["label"], B["image"], B["label"])]
            out = _edit_fns()[s.operation](self.model, *args, list(s.classes), s.t, s.seed)
            self.result = out[0].cpu()
            self.state.forwards += 1
            self._key = key
        self.redraw()

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

    def __init__(self, editor: StyleShapeEditor, export_path: str | Path = "edit.png") -> None:
        import ipywidgets as widgets

        self.editor = self.panel = editor
        s = editor.state
        names = [str(x.get("name", i)) for i, x in enumerate(editor.samples)]
        common = dict(style={"description_width": "initial"})
        self._syncing = False
        self.last_error: str | None = None
        self.controls: dict[str, widgets.ValueWidget] = {
            "a": widgets.Dropdown(options=[(n, i) for i, n in enumerate(names)], value=s.a, description="A", **common),
            "b": widgets.Dropdown(options=[(n, i) for i, n in enumerate(names)], value=s.b, description="B", **common),
            "operation": widgets.Dropdown(options=editor.operations(), value=s.operation, description="operation",
                                          **common),
            "classes": widgets.SelectMultiple(options=[(f"{c}: {n}", c) for c, n in enumerate(editor.class_names)],
                                              value=s.classes, rows=6, description="classes", **common),
            "t": widgets.FloatSlider(value=s.t, min=0.0, max=1.0, step=0.05, description="t (amount of B)",
                                     continuous_update=False, **common),
            "seed": widgets.BoundedIntText(value=s.seed, min=0, max=2**31 - 1, description="noise seed", **common),
        }
        for name, control in self.controls.items():
            control.observe(lambda change, name=name: self._on_control(name, change["new"]), names="value")
        self.export_path = widgets.Text(value=str(export_path), description="file", **common)
        self.export_button = widgets.Button(description="Export PNG", icon="download", button_style="info")
        self.export_button.on_click(lambda _: self.export())
        self.status = widgets.HTML()
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="100%", max_width="1000px"))
        c = self.controls
        self.widget = widgets.VBox([
            widgets.HBox([c["a"], c["b"], c["operation"]]),
            widgets.HBox([c["classes"], widgets.VBox([c["t"], c["seed"]])]),
            self.image,
            widgets.HBox([self.export_path, self.export_button, self.status]),
        ])
        self.widget.add_class("ca2sis-editor")
        self._show()

    def _show(self) -> None:
        self.image.value = self.editor.png
        self.status.value = (f"<small>edits run: {self.editor.state.forwards} · "
                             f"drawn in {1000 * self.editor.render_seconds:.0f} ms</small>")

    def _on_control(self, name: str, value: Any) -> None:
        if self._syncing:
            return
        try:
            self.apply(**{name: tuple(value) if name == "classes" else value})
        except ValueError:  # explained in the status line; the controls go back to the state
            self._sync_controls()

    def apply(self, **changes: Any) -> None:
        """Change the selection as the controls would; a bad choice is explained in the status line."""
        try:
            self.editor.set(**changes)
            self.last_error = None
        except ValueError as error:
            self.last_error = str(error)
            self.status.value = f"<small style='color:#b00'>{self.last_error}</small>"
            raise
        self._sync_controls()
        self._show()

    def _sync_controls(self) -> None:
        s = self.editor.state
        self._syncing = True
        try:
            for name in ("a", "b", "operation", "classes", "t", "seed"):
                value = getattr(s, name)
                if self.controls[name].value != value:
                    self.controls[name].value = value
        finally:
            self._syncing = False


def build_editor(model: nn.Module, samples: Sequence[Sample], class_names: Sequence[str] | None = None,
                 palette: np.ndarray | Sequence[Sequence[int]] | None = None,
                 export_path: str | Path = "edit.png", dpi: int = 80) -> EditorApp:
    """The editor app for ``model`` on ``samples`` (A = sample 0, B = sample 1 to start)."""
    with torch.no_grad():
        editor = StyleShapeEditor(model, samples, class_names, palette, dpi=dpi)
    return EditorApp(editor, export_path)
