"""Does the attention follow the mask? Three numbers per (layer, class), all computed here by hand.

* **IoU of the argmax.** Give every pixel the class its query matches best (argmax over K of the
  head-averaged logits) and compare that segmentation with the mask: |pred ∩ mask| / |pred ∪ mask|.
  It asks "does the layer *choose* the right class?" and ignores how confident the choice is.
* **AUROC of the logits.** Rank all pixels by their logit for class c; the AUROC is the probability
  that a random pixel *of* class c is ranked above a random pixel *not* of class c (Mann–Whitney U).
  It ignores the other classes and any monotone rescaling: 1 = perfect ordering, 0.5 = chance.
* **Average precision (AP) of the logits.** The same ranking, read from the top: walking down the
  pixels by their logit for class c, the precision (share of class-c pixels so far) averaged over
  the recall steps. For a few dozen pixels of an eye among thousands, a few dozen other pixels
  ranked above some of the eye's move its AUROC by thousandths but its AP by a half: on a trained
  model AUROC sits near 1 for every class, while AP still tells the classes apart. Chance is the
  class's share of the pixels, not 0.5.

The mask is nearest-resized to each layer, exactly as the attention loss L_att sees it
(docs/architecture.md#attention-loss-l_att),
and pixels with an ignore label are left out. Numbers pool all samples of a recording.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .record import AttentionRecording


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``; tied values share the average of their ranks (as in Mann–Whitney)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts)  # rank of the last member of each group of equal values
    return (last_rank - (counts - 1) / 2.0)[inverse]


def auroc(scores: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> float:
    """Area under the ROC curve of ``scores`` for the boolean ``target``; NaN without both classes.

    AUROC = (R₊ − n₊(n₊+1)/2) / (n₊ n₋), with R₊ the sum of the positives' ranks among all scores.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    target = np.asarray(target, dtype=bool).ravel()
    n_pos = int(target.sum())
    n_neg = target.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = average_ranks(scores)[target].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(scores: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> float:
    """AP = Σ_n (R_n − R_{n−1}) P_n over the distinct scores from the highest down (P, R: precision and recall
    of "score ≥ threshold"; tied scores enter together); NaN without a positive."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    target = np.asarray(target, dtype=bool).ravel()
    n_pos = int(target.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    scores, target = scores[order], target[order]
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]  # the last pixel of each group of equal scores
    true_pos = np.cumsum(target)[last_of_tie]
    precision = true_pos / (np.flatnonzero(last_of_tie) + 1)
    recall_step = np.diff(np.r_[0, true_pos]) / n_pos
    return float((recall_step * precision).sum())


def iou(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> float:
    """|pred ∩ target| / |pred ∪ target| for boolean arrays; NaN when both are empty."""
    pred = np.asarray(pred, dtype=bool)
    target = np.asarray(target, dtype=bool)
    union = np.logical_or(pred, target).sum()
    return float("nan") if union == 0 else float(np.logical_and(pred, target).sum() / union)


def agreement_table(recording: AttentionRecording, head: int | None = None) -> pd.DataFrame:
    """One row per (layer, class): its share of the mask, IoU of the attention argmax, AUROC and AP.

    Columns: layer, resolution (h), class_id, class, pixels (fraction of valid mask pixels),
    iou, auroc, ap. Classes absent from the mask get NaN (there is nothing to agree with).
    """
    rows = []
    for layer in recording.layer_names:
        target = recording.target(layer)  # (B, K, h, w)
        valid = (target.sum(dim=1) > 0).numpy()  # (B, h, w)
        truth = target.argmax(dim=1).numpy()[valid]  # (N,) class per valid pixel
        logits = recording.attention_map(layer, head, kind="logits")  # (B, K, h, w)
        chosen = logits.argmax(dim=1).numpy()[valid]
        scores = logits.permute(0, 2, 3, 1).numpy()[valid]  # (N, K)
        for c, name in enumerate(recording.class_names):
            present = truth == c
            rows.append({
                "layer": layer,
                "resolution": recording.layer_size(layer)[0],
                "class_id": c,
                "class": name,
                "pixels": float(present.mean()) if present.size else 0.0,
                "iou": iou(chosen == c, present) if present.any() else float("nan"),
                "auroc": auroc(scores[:, c], present),
                "ap": average_precision(scores[:, c], present),
            })
    return pd.DataFrame(rows)


def agreement_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per layer: mean IoU, mean AUROC and mean AP over the classes present in the mask (NaNs skipped)."""
    present = table[table["pixels"] > 0]
    summary = present.groupby("layer", sort=False).agg(
        resolution=("resolution", "first"), classes=("class_id", "count"),
        mean_iou=("iou", "mean"), mean_auroc=("auroc", "mean"), mean_ap=("ap", "mean"),
    )
    return summary.reset_index()
