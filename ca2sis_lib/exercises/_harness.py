"""The machinery every ``check_<name>`` shares: run the student's function on prepared cases, turn
what went wrong into a hint, never let the student's exception escape (unless ``strict``).

A case is a small function ``case(student_function) -> None`` that calls the student's function on
one input (through :func:`call_student`) and raises :class:`Mismatch` with a helpful message when
the answer is wrong. The harness runs the cases in order and stops at the first one that fails, so
the student reads one problem at a time. Random inputs come from a seeded generator inside
``torch.random.fork_rng``: a check never moves the notebook's own random state, so the figures after
it do not change. Every case builds its inputs (and model) afresh, so nothing one attempt does can
change how a later one is judged.

What the student's code may do and how it is reported:

* change its inputs in place (a tensor, an array, a list, a model's weights, mode or hooks):
  "wrong", naming the input — :func:`call_student` compares them before and after the call;
* raise anything, ``SystemExit`` included, even an exception whose ``__str__`` itself raises:
  "error", with the exception's type and (safely rendered) message. Only ``KeyboardInterrupt`` goes
  through: it is the notebook's interrupt button, which must stop the cell;
* return a result on another device than its inputs (all on the CPU): "wrong", saying so.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

NOT_YET, CORRECT, WRONG, ERROR = "not yet", "correct", "wrong", "error"
_STATUS: dict[str, str] = {}
_PASSED: dict[str, Callable] = {}  # exercise -> the student's function its last check found correct


class Mismatch(Exception):
    """The student's answer is wrong; the message says how, without giving the answer away."""


class ExerciseFailed(AssertionError):
    """Raised by a check with ``strict=True`` (autograding) when the exercise is not solved."""


class CheckBroken(RuntimeError):
    """The check itself failed to build a case: a bug of the check, never reported as the student's."""


@dataclass
class Case:
    label: str  # what this input is, e.g. "batch 1, a class absent from the mask"
    run: Callable[[Callable], None]  # raises Mismatch when the student's answer is wrong


def lazy(factory: Callable[..., Callable[[Callable], None]], *args) -> Callable[[Callable], None]:
    """A case whose inputs and reference answer are only built when it runs (an unsolved exercise
    stops at the first case, so the others cost nothing)."""
    def run(student: Callable) -> None:
        try:
            case = factory(*args)
        except Exception as error:
            raise CheckBroken(f"the check could not build its test inputs: {safe_text(error)}") from error
        case(student)
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
            except (KeyboardInterrupt, CheckBroken):  # the interrupt button stops the cell; a check's bug is shown
                raise
            except NotImplementedError:
                return _report(name, NOT_YET, f"… {name}: not yet — replace `raise NotImplementedError()` with your "
                                              "code and run this cell again", strict, quiet)
            except Mismatch as problem:
                return _report(name, WRONG, f"✗ {name} — on {case.label}: {safe_text(problem)}", strict, quiet)
            except BaseException as error:  # SystemExit too: report it, never stop the notebook
                return _report(name, ERROR, f"✗ {name} — on {case.label} {_crash_report(error)}", strict, quiet)
    _PASSED[name] = student
    return _report(name, CORRECT, f"✓ {name}: correct ✓ ({len(case_list)} cases)", strict, quiet)


HINT_ATTRIBUTE = "exercise_hint"  # set on a student's exception by attach_hint, read by run_check
RAISED_ATTRIBUTE = "raised_by_student_function"  # set by call_student on what the student's function raised


def safe_text(error: BaseException) -> str:
    """``str(error)``, or a note when the exception's own ``__str__`` fails (a student's class may)."""
    try:
        return str(error)
    except BaseException as inner:  # any failure of the student's code is reported, not raised
        return f"<its message cannot be shown: its __str__ raised {type(inner).__name__}>"


def _attribute(error: BaseException, attribute: str) -> Any:
    try:
        return getattr(error, attribute, None)
    except Exception:  # a student's exception class with a broken __getattr__
        return None


def _tag(error: BaseException, attribute: str, value: Any) -> None:
    try:
        setattr(error, attribute, value)
    except Exception:  # an exception class that refuses attributes: the report is only less precise
        pass


def _crash_report(error: BaseException) -> str:
    """'your function raised X: message — hint', or, for an error in checking the answer, what failed."""
    kind = type(error).__name__
    if isinstance(error, SystemExit):
        return (f"your function raised SystemExit ({safe_text(error) or 'exit()'}): sys.exit() and exit() stop a "
                "program; a function hands back its answer with `return`")
    if _attribute(error, RAISED_ATTRIBUTE):
        message = f"your function raised {kind}: {safe_text(error)}"
        hint = _attribute(error, HINT_ATTRIBUTE)
        return message + (f" — {hint}" if hint else "")  # a hint the case attached to the crash (see attach_hint)
    return (f"your function returned, but its answer could not be checked ({kind}: {safe_text(error)}): return "
            "the kind of value the exercise asks for")


def attach_hint(error: BaseException, hint: str) -> None:
    """Have the report of this crash of the student's code end with ``hint`` (e.g. what the function received)."""
    _tag(error, HINT_ATTRIBUTE, hint)


def describe_inputs(**inputs) -> str:
    """'NumPy arrays (scores: float64 of shape (400,), target: bool of shape (400,))': what a function received."""
    kinds = {type(v) for v in inputs.values()}
    kind = ("NumPy arrays" if kinds == {np.ndarray} else "torch tensors" if kinds == {Tensor}
            else " and ".join(sorted(k.__name__ for k in kinds)))
    parts = [f"{name}: {str(v.dtype).removeprefix('torch.')} of shape {tuple(v.shape)}" if hasattr(v, "shape")
             else f"{name}: {type(v).__name__}" for name, v in inputs.items()]
    return f"{kind} ({', '.join(parts)})"


def call_student(student: Callable, *args, names: Sequence[str], received: str | None = None, advice: str = ""):
    """``student(*args)``, its inputs (called ``names`` in the messages) compared before and after:
    one changed in place is a :class:`Mismatch` naming it. What the function raises is marked as its
    own (see :func:`_crash_report`); when it is an AttributeError or TypeError about the type of its
    inputs (a NumPy method called on a tensor, a torch one on an array) and ``received`` is given, the
    report says what the function received (e.g. from :func:`describe_inputs`) and ``advice``."""
    before = [_snapshot(a) for a in args]
    try:
        answer = student(*args)
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        _tag(error, RAISED_ATTRIBUTE, True)
        if received is not None and isinstance(error, AttributeError | TypeError):
            text = safe_text(error)
            about_arrays = any(isinstance(a, np.ndarray) for a in args) and ("ndarray" in text or "numpy" in text)
            about_tensors = any(isinstance(a, Tensor) for a in args) and "'Tensor' object" in text
            if about_arrays or about_tensors:
                attach_hint(error, f"your function received {received}" + (f"; {advice}" if advice else ""))
        raise
    for name, value, snapshot in zip(names, args, before):
        change = _change(value, snapshot)
        if change and isinstance(value, nn.Module):
            raise Mismatch(f"your function changed the model `{name}` ({change}): use it, but leave it as you got it "
                           "(no weight updates, no .train(), remove any hook you register)")
        if change:
            raise Mismatch(f"your function changed its input `{name}` in place ({change}); the caller's data must "
                           f"stay as it was: work on a copy (`{name} = {name}.clone()` for a tensor, `.copy()` for an "
                           "array or a list) or use operations that return new values")
    return answer


# -- inputs before and after the student's call ----------------------------------------------------
def _snapshot(value: Any) -> Any:
    """A copy of what a call may change: values of tensors and arrays, items of lists and dicts, a
    model's weights, buffers, modes and hooks (None: nothing to compare, e.g. a number)."""
    if isinstance(value, Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, nn.Module):
        return ({k: v.detach().clone() for k, v in value.state_dict().items()}, _modes(value), _hook_count(value))
    if isinstance(value, list | tuple | dict):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return (len(value), {k: _snapshot(v) for k, v in items})
    try:
        return copy.deepcopy(value)  # a config dataclass and the like, compared with ==
    except Exception:
        return None


def _modes(model: nn.Module) -> list[tuple[bool, ...]]:
    return [(m.training,) for m in model.modules()] + [(p.requires_grad,) for p in model.parameters()]


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


def _same_tensor(a: Tensor, b: Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    return bool(torch.equal(a, b) or (a.is_floating_point() and ((a == b) | (a.isnan() & b.isnan())).all()))


def _change(value: Any, before: Any) -> str | None:
    """How ``value`` differs from its snapshot ``before``, in words; None when it does not."""
    if isinstance(value, Tensor):
        return None if _same_tensor(value.detach(), before) else ("its shape" if value.shape != before.shape
                                                                   else "its values")
    if isinstance(value, np.ndarray):
        if value.shape != before.shape:
            return "its shape"
        return None if np.array_equal(value, before, equal_nan=value.dtype.kind in "fc") else "its values"
    if isinstance(value, nn.Module):
        weights, modes, hooks = before
        now = value.state_dict()
        if now.keys() != weights.keys() or any(not _same_tensor(now[k].detach(), weights[k]) for k in weights):
            return "its weights or buffers"
        if _modes(value) != modes:
            return "its training mode or which weights require gradients"
        return "it has hooks it did not have" if _hook_count(value) != hooks else None
    if isinstance(value, list | tuple | dict):
        length, items = before
        if len(value) != length:
            return "its length"
        now = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in now:
            if key not in items:
                return "its keys"
            change = _change(item, items[key])
            if change:
                return f"item {key!r}: {change}"
        return None
    if before is None:
        return None
    try:
        return None if bool(value == before) else "its contents"
    except Exception:
        return None


# -- comparison helpers --------------------------------------------------------------------------
def _on_the_cpu(value: Tensor, what: str) -> Tensor:
    """The checks' inputs are on the CPU: a result elsewhere is the student's function moving it."""
    if value.device.type != "cpu":
        raise Mismatch(f"{what} is on the device '{value.device}', but every input was on the CPU: return it on "
                       "the device of the inputs (no .cuda() or .to(...) on the result)")
    return value


def as_tensor(value, what: str) -> Tensor:
    """The student's value as a CPU tensor (numpy arrays of numbers accepted); a clear Mismatch otherwise."""
    if isinstance(value, Tensor):
        return _on_the_cpu(value.detach(), what)
    if isinstance(value, np.ndarray):
        try:
            return torch.from_numpy(value)
        except TypeError:
            raise Mismatch(f"{what} is a NumPy array of {value.dtype}, not of numbers") from None
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
    if isinstance(value, Tensor):
        _on_the_cpu(value, what)
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
