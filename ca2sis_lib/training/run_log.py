"""What a run leaves in its folder as it goes: ``log.csv`` (one row of losses per logged step) and sample grids.

``config.yaml``, ``checkpoint.pt`` and ``summary.json`` are written by the run itself
(:meth:`~ca2sis_lib.training.run.Run.save`, :func:`ca2sis_lib.train.finish`).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..masks import colour_labels


def append_csv(path: Path, row: dict[str, float]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


LOG_HEADER_START = "step,"  # every log.csv this trainer writes starts so


def truncate_log(path: Path, last_step: int) -> None:
    """Drop the rows logged after step ``last_step``, where a run (re)starts: after its checkpoint's step
    they will be logged again, and at step 0 (a killed attempt that saved no checkpoint) the whole
    log goes, header included, so the new run writes its own. A row cut off by a kill (no line end)
    is dropped too. A log.csv this trainer did not write is refused, untouched."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    if lines and not lines[0].startswith(LOG_HEADER_START):
        raise FileExistsError(f"{path} was not written by a training run (its first line is {lines[0].strip()[:60]!r}) "
                              "and the run would append to it; move it away or choose another --out (out_dir)")
    kept = [row for row in lines[1:] if row.endswith("\n") and int(row.split(",", 1)[0]) <= last_step]
    if not kept and last_step == 0:
        path.unlink()
        return
    path.write_text("".join(lines[:1] + kept))


def save_grid(path: Path, label: Tensor, real: Tensor, fake: Tensor, palette: Any) -> None:
    """Rows of label colours, real images and generated images (first four of the batch) as a PNG."""
    from torchvision.utils import save_image

    n = min(4, len(real))
    labels = torch.from_numpy(colour_labels(label[:n], palette)).movedim(-1, -3).float() / 127.5 - 1
    rows = torch.cat([labels, real[:n].cpu().float(), fake[:n].detach().cpu().float()])
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image((rows + 1) / 2, path, nrow=n)
