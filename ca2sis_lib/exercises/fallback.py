"""The student's function once its check has passed, the library's until then.

Notebook 02 builds its inline SPADE layer and cross-attention layer on the answers to its two
exercises: the student sees their own function at work, and a student who is stuck still sees every
later cell run (on the library's implementation, the one the check compares with).
"""

from __future__ import annotations

from collections.abc import Callable

from . import _reference as ref
from ._harness import passed, statuses

LIBRARY: dict[str, Callable] = {  # exercise -> the library's implementation with the same signature
    "spade_denorm": ref.spade_denorm,
    "class_cross_attention": ref.class_cross_attention,
}


def yours_or_library(name: str) -> Callable:
    """Exercise ``name``'s function as the student wrote it if its last check found it correct, else the
    library's; prints which one the cells below use."""
    if name not in LIBRARY:
        raise ValueError(f"exercise {name!r} has no library implementation to fall back on; these do: "
                         f"{', '.join(sorted(LIBRARY))}")
    student = passed(name)
    if student is not None:
        print(f"the cells below use your {name} (its check passed)")
        return student
    status = statuses().get(name, "not checked yet")
    print(f"the cells below use the library's {name} (yours: {status}); run its check again once it passes")
    return LIBRARY[name]
