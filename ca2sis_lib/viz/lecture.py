"""The inspector and the editor in one app without code, for a lecture (``make inspector``).

    build_lecture_app()                                         # shipped toy CA²-SIS on toy faces
    build_lecture_app("official:/path/to/generator.pth", "data/celebamask")   # the authors' weights

``app/lecture.ipynb`` calls this and Voilà serves it as a web page with two tabs: the attention
inspector and the style-and-shape editor, built by their public constructors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

DEFAULT_MODEL = "ca2sis_tiny_toy"


def lecture_samples(model: nn.Module, data: str = "toy", num_samples: int = 8,
                    seed: int = 0) -> tuple[list[dict[str, Any]], list[str], np.ndarray]:
    """Samples for ``model``'s classes and size: toy test faces, or a folder with images/ and labels/."""
    config = model.config
    if data == "toy":
        from ..data.toy import TOY_CLASSES, TOY_PALETTE, ToyFaces

        if config.num_classes != len(TOY_CLASSES):
            raise ValueError(f"the model has {config.num_classes} classes, the toy faces {len(TOY_CLASSES)}: "
                             "give a dataset of the model's classes with DATA=<folder> (e.g. a prepared "
                             "CelebAMask-HQ for the authors' weights, see notebook 01)")
        dataset = ToyFaces(num_samples, size=config.image_size, seed=seed, split="test")
        names, palette = list(TOY_CLASSES), np.asarray(TOY_PALETTE)
    else:
        from ..data.folder import SegmentationFolder

        if not Path(data).is_dir():
            raise FileNotFoundError(f"DATA={data!r} is not a folder: give a folder with images/ and labels/ "
                                    "(or a test/ split of them), or leave DATA out for the toy faces")
        split = "test" if (Path(data) / "test").is_dir() else None
        dataset = SegmentationFolder(data, split=split, num_classes=config.num_classes, resize=config.image_size)
        names, palette = list(dataset.class_names), np.asarray(dataset.palette)
    samples = [dataset[i] for i in range(min(num_samples, len(dataset)))]
    if len(samples) < 2:
        raise ValueError(f"{data}: the editor needs at least two samples, found {len(samples)}")
    return samples, names, palette


def build_lecture_app(checkpoint: str = "", data: str = "toy", num_samples: int = 8, seed: int = 0,
                      export_dir: str | Path = "exports/lecture", dpi: int = 80) -> Any:
    """A ``Tab`` with the attention inspector and the style-and-shape editor on one model.

    ``checkpoint``: "" for the shipped toy model, or anything ``load_model`` accepts (a shipped name,
    a training checkpoint, ``official:<path>``).
    """
    import ipywidgets as widgets

    from ..loading import load_model
    from . import build_editor, build_inspector

    source = checkpoint or DEFAULT_MODEL
    model = load_model(source).eval()
    samples, names, palette = lecture_samples(model, data, num_samples, seed)
    export_dir = Path(export_dir)
    with torch.no_grad():
        inspector = build_inspector(model, samples, class_names=names, palette=palette,
                                    export_path=export_dir / "inspector_view.png", dpi=dpi)
        editor = build_editor(model, samples, class_names=names, palette=palette,
                              export_path=export_dir / "editor_view.png", dpi=dpi)
    config = model.config
    header = widgets.HTML(f"<p><b>model:</b> {source} · {config.image_size}², K = {config.num_classes} classes · "
                          f"<b>samples:</b> {len(samples)} from {'the toy test split' if data == 'toy' else data}</p>")
    tabs = widgets.Tab(children=[inspector.widget, editor.widget])
    tabs.set_title(0, "attention inspector")
    tabs.set_title(1, "style & shape editor")
    app = widgets.VBox([header, tabs])
    app.add_class("ca2sis-lecture")
    app.inspector, app.editor = inspector, editor  # for tests and for a notebook that wants to drive them
    return app
