"""The machinery every ``check_<name>`` shares: run the student's function on prepared cases, turn
what went wrong into a hint, never let the student's exception escape (unless ``strict``).

A case is a small function ``case(student_function) -> None`` that calls the student's function on
one input and raises :class:`Mismatch` with a helpful message when the answer is wrong. The harness
runs the cases in order and stops at the first one that fails, so the student reads one problem
at a time. Random inputs come from a seeded generator inside ``torch.random.fork_rng``: a check
never moves the notebook's own random state, so the figures after it do not change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

NOT_YET, CORRECT, WRONG, ERROR = "not yet", "correct", "wrong", "error"
_STATUS: dict[str, str] = {}
_PASSED: dict[str, Callable] = {}  # exercise -> the student's function its last check found correct


class Mismatch(Exception):
    """The student's answer is wrong; the message says how, without giving the answer away."""


class ExerciseFailed(AssertionError):
    """Raised by a check with ``strict=True`` (autograding) when the exercise is not solved."""


@dataclass
class Case:
    label: str  # what this input is, e.g. "batch 1, a class absent from the mask"
    run: Callable[[Callable], None]  # raises Mismatch when the student's answer is wrong


def lazy(factory: Callable[..., Callable[[Callable], None]], *args) -> Callable[[Callable], None]:
    """A case whose inputs and reference answer are only built when it runs (an unsolved exercise
    stops at the first case, so the others cost nothing)."""
    def run(student: Callable) -> None:
        factory(*args)(student)
    return run


def statuses() -> dict[str, str]:
    """Exercise name -> 'correct', 'not yet', 'wrong' or 'error', for every check run in this process."""
    return dict(_STATUS)


def passed(name: str) -> Callable | None:
    """The student's function for exercise ``name`` if its last check found it correct, else None."""
    return _PASSED.get(name)


def reset() -> None:
    _STATUS.clear()
    _PASSED.clear()


def _report(name: str, status: str, message: str, strict: bool, quiet: bool) -> bool:
    _STATUS[name] = status
    if not quiet:
        print(message)
    if strict and status != CORRECT:
        raise ExerciseFailed(f"{name}: {status}")
    return status == CORRECT


def run_check(name: str, student: Callable, cases: Callable[[], Sequence[Case]], strict: bool = False,
              quiet: bool = False) -> bool:
    """Run ``cases()`` (built lazily, under a fixed seed) against ``student``; print and record the verdict."""
    _PASSED.pop(name, None)  # a new answer is checked: the last verdict no longer holds
    if not callable(student):
        return _report(name, ERROR, f"✗ {name}: expected a function, got {type(student).__name__}", strict, quiet)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            case_list = list(cases())
        except Exception as error:  # a bug in the check itself must not look like the student's fault
            raise RuntimeError(f"the check for {name} could not build its test inputs: {error}") from error
        for case in case_list:
            try:
                with torch.no_grad():
                    case.run(student)
            except NotImplementedError:
                return _report(name, NOT_YET, f"… {name}: not yet — replace `raise NotImplementedError()` with your "
                                              "code and run this cell again", strict, quiet)
            except Mismatch as problem:
                return _report(name, WRONG, f"✗ {name} — on {case.label}: {problem}", strict, quiet)
            except Exception as error:  # the student's code crashed: report it, never crash the notebook
                message = f"✗ {name} — on {case.label} your function raised {type(error).__name__}: {error}"
                hint = getattr(error, HINT_ATTRIBUTE, None)
                if hint:  # a hint the case attached to the crash (see attach_hint)
                    message += f" — {hint}"
                return _report(name, ERROR, message, strict, quiet)
    _PASSED[name] = student
    return _report(name, CORRECT, f"✓ {name}: correct ✓ ({len(case_list)} cases)", strict, quiet)


HINT_ATTRIBUTE = "exercise_hint"  # set on a student's exception by attach_hint, read by run_check


def attach_hint(error: BaseException, hint: str) -> None:
    """Have the report of this crash of the student's code end with ``hint`` (e.g. what the function received)."""
    setattr(error, HINT_ATTRIBUTE, hint)


def describe_inputs(**inputs) -> str:
    """'NumPy arrays (scores: float64 of shape (400,), target: bool of shape (400,))': what a function received."""
    kinds = {type(v) for v in inputs.values()}
    kind = ("NumPy arrays" if kinds == {np.ndarray} else "torch tensors" if kinds == {Tensor}
            else " and ".join(sorted(k.__name__ for k in kinds)))
    parts = [f"{name}: {str(v.dtype).removeprefix('torch.')} of shape {tuple(v.shape)}" if hasattr(v, "shape")
             else f"{name}: {type(v).__name__}" for name, v in inputs.items()]
    return f"{kind} ({', '.join(parts)})"


def call_student(student: Callable, *args, received: str, advice: str = ""):
    """``student(*args)``; when it raises an AttributeError or TypeError about the type of its inputs
    (a NumPy method called on a tensor, a torch one on an array), the report of the crash says what
    the function received: ``received`` (e.g. from :func:`describe_inputs`) and ``advice``."""
    try:
        return student(*args)
    except (AttributeError, TypeError) as error:
        text = str(error)
        about_arrays = any(isinstance(a, np.ndarray) for a in args) and ("ndarray" in text or "numpy" in text)
        about_tensors = any(isinstance(a, Tensor) for a in args) and "'Tensor' object" in text
        if about_arrays or about_tensors:
            attach_hint(error, f"your function received {received}" + (f"; {advice}" if advice else ""))
        raise


# -- comparison helpers --------------------------------------------------------------------------
def as_tensor(value, what: str) -> Tensor:
    """The student's value as a tensor (numpy arrays accepted); a clear Mismatch otherwise."""
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise Mismatch(f"{what} should be a torch.Tensor, got {type(value).__name__}")


def check_shape(got: Tensor, expected_shape: Sequence[int], what: str, dims: Sequence[str] | None = None) -> None:
    """Raise a Mismatch naming the first dimension of the wrong size (or the wrong order of dims)."""
    got_shape, expected_shape = tuple(got.shape), tuple(expected_shape)
    if got_shape == expected_shape:
        return
    if len(got_shape) != len(expected_shape):
        names = f" ({', '.join(dims)})" if dims else ""
        raise Mismatch(f"{what} has {len(got_shape)} dimensions {got_shape}; it should have "
                       f"{len(expected_shape)}{names}")
    if sorted(got_shape) == sorted(expected_shape):
        order = f"; the order should be ({', '.join(dims)})" if dims else ""
        raise Mismatch(f"{what} has the right sizes in the wrong order {got_shape}{order}. "
                       "Check your permute/rearrange.")
    i = next(i for i, (a, b) in enumerate(zip(got_shape, expected_shape)) if a != b)
    name = f" ({dims[i]})" if dims else ""
    raise Mismatch(f"{what}: dimension {i}{name} has size {got_shape[i]}, which is not the expected size. "
                   f"Your full shape is {got_shape}.")


def close(a: Tensor, b: Tensor, atol: float = 1e-4, rtol: float = 1e-4) -> bool:
    """Same shape and values (NaN equal to NaN)."""
    if tuple(a.shape) != tuple(b.shape):
        return False
    return bool(torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol, equal_nan=True))


def check_values(got: Tensor, expected: Tensor, what: str, atol: float = 1e-4, hints: Sequence[str] = ()) -> None:
    """Shapes first, then values; ``hints`` are appended when the values differ."""
    check_shape(got, expected.shape, what)
    if close(got, expected, atol=atol):
        return
    diff = (got.double() - expected.double()).abs()
    nan_mismatch = torch.isnan(got.double()) != torch.isnan(expected.double())
    if nan_mismatch.any():
        raise Mismatch(f"{what}: some entries are NaN where they should not be, or a number where NaN is expected"
                       + (" — " + " ".join(hints) if hints else ""))
    worst = float(diff[~torch.isnan(diff)].max())
    raise Mismatch(f"{what}: the shape is right, the values are not (largest error {worst:.3g})"
                   + (". " + " ".join(hints) if hints else ""))


def scalar(value, what: str) -> float:
    """A Python float from a 0-d tensor, an array of one element or a number."""
    if isinstance(value, Tensor | np.ndarray):
        if int(np.prod(value.shape)) == 1:
            return float(value.reshape(()))
        raise Mismatch(f"{what} should be a single number, got shape {tuple(value.shape)}")
    if isinstance(value, int | float):
        return float(value)
    raise Mismatch(f"{what} should be a number, got {type(value).__name__}")


def same_number(a: float, b: float, tol: float = 1e-4) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(b))
