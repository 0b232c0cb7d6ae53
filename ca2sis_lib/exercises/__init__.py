"""Automatic checks for the exercises in notebooks 00–05 (table and instructions: docs/exercises.md).

Every coding exercise has a ``check_<name>(student_function, strict=False)`` that runs the student's
function and the library's implementation on the same random inputs and edge cases (a class absent
from the mask, batch 1, non-square maps where they are allowed) and prints one line:

* ``✓ <name>: correct ✓`` — every case agrees with the library;
* ``… <name>: not yet`` — the function still raises ``NotImplementedError`` (the student version);
* ``✗ <name> — on <case>: <what is wrong>`` — a hint that names the problem (a wrong dimension, weights
  that do not sum to 1 over the classes, a missing scale, …) without giving the answer away.

A check never raises because of the student's code: it catches the exception and reports it. With
``strict=True`` (the hidden autograder tests) it raises :class:`ExerciseFailed` unless the answer is
correct. It returns a bool and records its verdict, which ``statuses()`` returns (the notebooks write
it into their metrics.json). ``yours_or_library(name)`` gives the student's function once its check
has passed and the library's until then (notebook 02 builds its inline layers on it).
"""

from ._harness import CORRECT, ERROR, NOT_YET, WRONG, ExerciseFailed, reset, statuses
from .agreement import check_argmax_iou, check_auroc
from .anatomy import check_embed_mask, check_tensor_shapes
from .conditioning import check_class_cross_attention, check_spade_denorm
from .data import check_colours_to_ids, check_to_one_hot
from .editing import check_swap_shape_tokens, check_swap_style_codes
from .fallback import yours_or_library
from .losses import check_attention_loss, check_balanced_attention_loss

# notebook -> its exercises, in the order they appear (easy to hard)
EXERCISES: dict[str, tuple[str, ...]] = {
    "00_anatomy_of_ca2sis": ("tensor_shapes", "embed_mask"),
    "01_data_preparation": ("to_one_hot", "colours_to_ids"),
    "02_spade_vs_cross_attention": ("spade_denorm", "class_cross_attention"),
    "03_training": ("attention_loss", "balanced_attention_loss"),
    "04_attention_inspection": ("argmax_iou", "auroc"),
    "05_style_and_shape_editing": ("swap_style_codes", "swap_shape_tokens"),
}

__all__ = [
    "CORRECT", "ERROR", "EXERCISES", "NOT_YET", "WRONG", "ExerciseFailed", "check_argmax_iou", "check_attention_loss",
    "check_auroc", "check_balanced_attention_loss", "check_class_cross_attention", "check_colours_to_ids",
    "check_embed_mask", "check_to_one_hot", "check_spade_denorm", "check_swap_shape_tokens",
    "check_tensor_shapes", "check_swap_style_codes", "reset", "statuses", "yours_or_library",
]
