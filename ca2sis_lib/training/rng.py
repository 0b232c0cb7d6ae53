"""The random-number state of a run: each step's seed, and the global generators' state saved in every checkpoint.

Restoring :func:`rng_state` on resume (:func:`set_rng_state`) and seeding each step's noise from
(seed, step, rank) (:func:`step_seed`) is what lets a killed and resumed run reach exactly the
weights of an uninterrupted one (docs/promises.md).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def step_seed(seed: int, step: int, rank: int) -> int:
    """The seed of step ``step``'s noise on process ``rank``: a pure function, so a resumed run draws the same."""
    return seed * 1_000_003 + step * 1009 + rank


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np_state[1].numpy().astype(np.uint32), *np_state[2:]))
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
