"""The exercises of notebooks 00–05 (docs/exercises.md).

* every check accepts the solution written in the source notebook and rejects at least two typical
  wrong answers with a hint (the wrong answers are written out below);
* an unsolved stub reports "not yet", a crash is reported, not raised, and ``strict=True`` raises;
* ``scripts/make_student.py`` (nbgrader's own preprocessors) removes every solution and hidden test, and
  points every badge and clone address at the students' copy, never at the instructors' notebooks;
* the student notebooks run top to bottom in smoke mode with every check reporting "not yet".
(That the solution notebooks pass every check in smoke mode is asserted by tests/test_notebooks.py.)
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import nbformat
import numpy as np
import papermill
import pytest
import torch
import torch.nn.functional as F
from conftest import CELL_TIMEOUT_S, load_script
from einops import rearrange
from test_notebooks import smoke_parameters

from ca2sis_lib import exercises

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
make_student = load_script("scripts/make_student.py")


def _solution_cells() -> dict[str, str]:
    """Exercise name -> source of its solution cell in the source notebooks."""
    found = {}
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("solution"):
                found[meta["grade_id"].split("_", 1)[1]] = cell.source
    return found


SOLUTIONS = _solution_cells()
ALL = [name for names in exercises.EXERCISES.values() for name in names]


def solution(name: str):
    """The function the notebook's solution cell defines (imports the notebooks have are provided)."""
    namespace = {"torch": torch, "F": F, "np": np, "math": math, "rearrange": rearrange}
    exec(SOLUTIONS[name], namespace)
    return namespace[name]


def run(name: str, student, capsys) -> tuple[bool, str]:
    ok = getattr(exercises, f"check_{name}")(student)
    return ok, capsys.readouterr().out


def test_every_exercise_has_a_solution_cell_and_a_check():
    assert sorted(SOLUTIONS) == sorted(ALL) and len(ALL) >= 10
    assert all(hasattr(exercises, f"check_{name}") for name in ALL)


@pytest.mark.parametrize("name", ALL)
def test_the_notebook_solution_passes(name, capsys):
    ok, out = run(name, solution(name), capsys)
    assert ok and "correct ✓" in out and exercises.statuses()[name] == exercises.CORRECT, out


@pytest.mark.parametrize("name", ALL)
def test_a_stub_is_not_yet_and_strict_raises(name, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError()

    ok, out = run(name, stub, capsys)
    assert not ok and "not yet" in out and exercises.statuses()[name] == exercises.NOT_YET
    with pytest.raises(exercises.ExerciseFailed):
        getattr(exercises, f"check_{name}")(stub, strict=True)


def test_a_crash_is_reported_not_raised_and_the_random_state_is_untouched(capsys):
    def crashes(*args):
        return [1, 2][5]

    state = torch.random.get_rng_state()
    ok, out = run("spade_denorm", crashes, capsys)
    assert not ok and "IndexError" in out and exercises.statuses()["spade_denorm"] == exercises.ERROR
    assert torch.equal(state, torch.random.get_rng_state())  # the notebook's later random draws do not change
    assert not exercises.check_spade_denorm("not a function")


def test_the_points_in_nbgraders_metadata_are_the_points_the_readme_and_docs_give():
    """Every exercise is graded as its check cell's metadata says: no "practice" beside points (issue of 02)."""
    points, questions, per_exercise = 0, 0, {}
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and cell.cell_type == "code":
                points += meta["points"]
                per_exercise[meta["grade_id"].split("_", 1)[1].removesuffix("_check")] = meta["points"]
            elif meta.get("grade"):
                questions += meta["points"]
    readme, docs = (ROOT / "README.md").read_text(), (ROOT / "docs" / "exercises.md").read_text()
    said = re.search(r"check cells give (\d+)\s+points \(1 to 3 each\), the questions (\d+) \(1 each\), "
                     r"(\d+) in all", readme)
    assert said and tuple(map(int, said.groups())) == (points, questions, points + questions)
    assert f"give {points} points and the twelve questions {questions}" in " ".join(docs.split())
    table = dict(re.findall(r"^\| \d\d [^|]+ \| [^|]+ \| `(\w+)\(.*\| (\d) \|$", docs, flags=re.M))
    assert {name: int(n) for name, n in table.items()} == per_exercise
    for text in (readme, docs):
        assert not re.search(r"as practice", text), "an exercise with points in its metadata is called practice"


def test_later_cells_use_the_students_function_only_once_its_check_passes(capsys):
    """Notebook 02 builds its inline layers on the exercise's answer: the student's once it is correct."""
    from ca2sis_lib.exercises.fallback import LIBRARY

    exercises.reset()
    assert exercises.yours_or_library("spade_denorm") is LIBRARY["spade_denorm"]  # not checked yet
    mine = solution("spade_denorm")
    assert exercises.check_spade_denorm(mine, quiet=True)
    assert exercises.yours_or_library("spade_denorm") is mine
    assert "your spade_denorm" in capsys.readouterr().out

    def stub(*args):
        raise NotImplementedError()

    assert not exercises.check_spade_denorm(stub, quiet=True)  # a later answer that fails: back to the library
    assert exercises.yours_or_library("spade_denorm") is LIBRARY["spade_denorm"]
    assert "the library's spade_denorm (yours: not yet)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no library implementation"):
        exercises.yours_or_library("auroc")
    for name, library in LIBRARY.items():  # the fallback is what the check compares with: it passes the check
        assert getattr(exercises, f"check_{name}")(library, quiet=True), name
    state = torch.random.get_rng_state()  # and it leaves the notebook's random draws alone (02's later examples)
    LIBRARY["spade_denorm"](torch.randn(2, 3, 4, 4), torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4))
    assert not torch.equal(state, torch.random.get_rng_state())  # the inputs above drew from it ...
    state = torch.random.get_rng_state()
    LIBRARY["spade_denorm"](*(torch.ones(2, 3, 4, 4),) * 3)
    assert torch.equal(state, torch.random.get_rng_state())  # ... the library's function did not
    exercises.reset()


def test_no_student_function_takes_a_name_the_notebook_uses():
    """An unsolved stub must not replace something a later cell calls (01 imports labels_to_one_hot)."""
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        for name in exercises.EXERCISES[path.stem]:
            users = [i for i, c in enumerate(cells) if c.cell_type == "code" and not c.metadata.get("nbgrader")
                     and re.search(rf"(?<![\w.'\"]){name}(?![\w'\"])", c.source)]  # not model.x, "x"
            assert not users, f"{path.name}: cells {users} use {name!r}, the name of a student's function"


# -- typical wrong answers: each check must reject them, with a hint ---------------------------------
def _shapes_without_exclusion(config, batch):
    shapes = solution("tensor_shapes")(config, batch)
    return {**shapes, "tokens": (batch, config.num_classes, config.token_size**2)}


def _shapes_heads_after_classes(config, batch):
    shapes = solution("tensor_shapes")(config, batch)
    return {**shapes, "logits": [(b, k, h, y, x) for b, h, k, y, x in shapes["logits"]]}


def _embed_keep_background(one_hot, linear, resolution, exclude):
    return solution("embed_mask")(one_hot, linear, resolution, False)


def _embed_bilinear(one_hot, linear, resolution, exclude):
    one_hot = one_hot[:, int(exclude):]
    return linear(F.interpolate(one_hot, size=(resolution, resolution), mode="bilinear").flatten(2))


def _embed_transposed(one_hot, linear, resolution, exclude):
    one_hot = F.interpolate(one_hot[:, int(exclude):], size=(resolution, resolution), mode="nearest")
    return linear(one_hot.transpose(-1, -2).flatten(2))


def _one_hot_channels_last(labels, k, ignore_index=None):
    return solution("to_one_hot")(labels, k, ignore_index).permute(0, 2, 3, 1)


def _one_hot_ignores_ignore(labels, k, ignore_index=None):
    return F.one_hot(labels.clamp(0, k - 1), k).permute(0, 3, 1, 2).float()


def _colours_red_only(rgb, palette):
    reds = [c[0] for c in palette]
    return np.vectorize(lambda r: reds.index(r))(rgb[..., 0])


def _colours_channel_sum(rgb, palette):
    sums = [sum(c) for c in palette]  # a colour by its R + G + B: two classes can share it
    return np.vectorize(lambda total: sums.index(total))(rgb.astype(int).sum(-1))


def _colours_red_green(rgb, palette):
    keys = [tuple(c[:2]) for c in palette]  # blue never looked at
    return np.array([[keys.index((int(r), int(g))) for r, g, _ in row] for row in rgb])


def _colours_nearest(rgb, palette):
    distance = ((rgb[:, :, None].astype(int) - np.asarray(palette)[None, None]) ** 2).sum(-1)
    return distance.argmin(-1)


def _spade_without_one(x, gamma, beta):
    return solution("spade_denorm")(x, gamma - 1, beta)  # BN(x)·γ + β


def _spade_instance_norm(x, gamma, beta):
    normalised = (x - x.mean((2, 3), keepdim=True)) / torch.sqrt(x.var((2, 3), keepdim=True, unbiased=False) + 1e-5)
    return normalised * (1 + gamma) + beta


def _attention(x, styles, layer, softmax_dim=-1, scale=True, split="b n (h d) -> b h n d"):
    q = rearrange(layer.to_q(x), split, h=layer.heads)
    k = rearrange(layer.to_k(styles), split, h=layer.heads)
    v = rearrange(layer.to_v(styles), split, h=layer.heads)
    scores = q @ k.transpose(-1, -2) / (math.sqrt(q.shape[-1]) if scale else 1.0)
    weights = scores.softmax(dim=softmax_dim)
    return layer.to_out(rearrange(weights @ v, "b h n d -> b n (h d)")), weights


def _loss_per_head(layers, mask):
    return torch.stack([F.binary_cross_entropy_with_logits(lg, F.interpolate(mask, size=lg.shape[-2:])[:, None]
                                                           .expand_as(lg)) for lg in layers]).mean()


def _loss_bilinear(layers, mask):
    return torch.stack([F.binary_cross_entropy_with_logits(
        lg.mean(1), F.interpolate(mask, size=lg.shape[-2:], mode="bilinear")) for lg in layers]).mean()


def _balanced(layers, mask, cap, weight_fn):
    losses = []
    for lg in layers:
        target = F.interpolate(mask, size=lg.shape[-2:])
        losses.append(F.binary_cross_entropy_with_logits(lg.mean(1), target, pos_weight=weight_fn(target, cap)))
    return torch.stack(losses).mean()


def _unclamped(layers, mask, cap):
    return _balanced(layers, mask, cap, lambda t, c: ((t[:, 0].numel() - t.sum((0, 2, 3))) / t.sum((0, 2, 3))
                                                      .clamp_min(1))[:, None, None])


def _per_sample(layers, mask, cap):
    return _balanced(layers, mask, cap, lambda t, c: ((t[0, 0].numel() - t.sum((2, 3))) / t.sum((2, 3)).clamp_min(1))
                     .clamp(1, c)[:, :, None, None])


def _iou_first_head(logits, mask):
    return solution("argmax_iou")(logits[:, :1], mask)


def _iou_zero_for_absent(logits, mask):
    return torch.nan_to_num(solution("argmax_iou")(logits, mask), nan=0.0)


def _iou_resized(logits, mask, mode):
    mean_logits = logits.mean(dim=1)
    truth = F.interpolate(mask, size=mean_logits.shape[-2:], mode=mode).argmax(dim=1)
    chosen = mean_logits.argmax(dim=1)
    return torch.tensor([float(((chosen == c) & (truth == c)).sum() / ((chosen == c) | (truth == c)).sum())
                         if (truth == c).any() else float("nan") for c in range(mask.shape[1])])


def _iou_bilinear(logits, mask):
    return _iou_resized(logits, mask, "bilinear")


def _iou_per_image(logits, mask):
    per_image = torch.stack([solution("argmax_iou")(logits[b:b + 1], mask[b:b + 1]) for b in range(mask.shape[0])])
    return per_image.nanmean(dim=0)


def _auroc_ordinal(scores, target):
    ranks = np.empty(len(scores))
    ranks[np.argsort(scores, kind="stable")] = np.arange(1, len(scores) + 1)
    n_pos, n_neg = target.sum(), (~target).sum()
    return (ranks[target].sum() - n_pos * (n_pos + 1) / 2) / max(n_pos * n_neg, 1)


def _auroc_negatives(scores, target):
    return solution("auroc")(scores, ~target) if target.any() and (~target).any() else float("nan")


def _auroc_torch_style(scores, target):
    scores, target = scores.float(), target.bool()  # tensor methods on NumPy arrays
    return solution("auroc")(scores.numpy(), target.numpy())


def _style_global(model, a, ma, b, mb, classes):
    return model.decode(model.embed_mask(ma), model.encode_style(b, mb)).image


def _style_b_layout(model, a, ma, b, mb, classes):
    styles = model.encode_style(a, ma)
    styles[:, classes] = model.encode_style(b, mb)[:, classes]
    return model.decode(model.embed_mask(mb), styles).image


def _style_batch_axis(model, a, ma, b, mb, classes):
    styles = model.encode_style(a, ma)
    styles[classes] = model.encode_style(b, mb)[classes]  # the batch axis, not the class axis
    return model.decode(model.embed_mask(ma), styles).image


def _tokens_unshifted(model, a, ma, mb, classes):
    tokens = model.embed_mask(ma)
    tokens[:, classes] = model.embed_mask(mb)[:, classes]
    return model.decode(tokens, model.encode_style(a, ma)).image


def _tokens_styles_from_b_mask(model, a, ma, mb, classes):
    tokens = model.embed_mask(ma)
    rows = [c - int(model.config.exclude_background) for c in classes]
    tokens[:, rows] = model.embed_mask(mb)[:, rows]
    return model.decode(tokens, model.encode_style(a, mb)).image


def _tokens_batch_axis(model, a, ma, mb, classes):
    tokens = model.embed_mask(ma)
    rows = [c - int(model.config.exclude_background) for c in classes]
    tokens[rows] = model.embed_mask(mb)[rows]  # the batch axis: no crash when the rows are < the batch size
    return model.decode(tokens, model.encode_style(a, ma)).image


WRONG = {  # exercise -> (wrong answer, a phrase its feedback must contain)
    "tensor_shapes": [(_shapes_without_exclusion, "'tokens': dimension 1"),
                      (_shapes_heads_after_classes, "wrong order")],
    "embed_mask": [(_embed_keep_background, "dimension 1 (K')"), (_embed_bilinear, "which interpolation mode"),
                   (_embed_transposed, "column by column")],
    "to_one_hot": [(_one_hot_channels_last, "wrong order"), (_one_hot_ignores_ignore, "ignore label")],
    "colours_to_ids": [(_colours_red_only, "share a red value"), (_colours_nearest, "raise a ValueError"),
                       (_colours_channel_sum, "same channel sum"), (_colours_red_green, "differ only in blue")],
    "spade_denorm": [(_spade_without_one, "γ = 0 and β = 0"), (_spade_instance_norm, "wrong dimensions")],
    "class_cross_attention": [
        (lambda x, s, layer: _attention(x, s, layer, softmax_dim=-2), "over which axis did you take the softmax"),
        (lambda x, s, layer: _attention(x, s, layer, scale=False), "too peaked"),
        (lambda x, s, layer: _attention(x, s, layer, split="b n (d h) -> b h n d"), "split the channels into heads")],
    "attention_loss": [(_loss_per_head, "average first"), (_loss_bilinear, "keeps it 0/1")],
    "balanced_attention_loss": [(_unclamped, "[1, pos_weight_max]"), (_per_sample, "not one per image")],
    "argmax_iou": [(_iou_first_head, "single head"), (_iou_zero_for_absent, "return NaN"),
                   (_iou_bilinear, 'resized with mode="bilinear"'), (_iou_per_image, "one IoU per image")],
    "auroc": [(_auroc_ordinal, "share the average of their ranks"), (_auroc_negatives, "whose ranks"),
              (_auroc_torch_style, "your function received NumPy arrays")],
    "swap_style_codes": [(_style_global, "Every class took B's style"), (_style_b_layout, "B's layout"),
                         (_style_batch_axis, "You indexed the batch axis")],
    "swap_shape_tokens": [(_tokens_unshifted, "wrong token rows"), (_tokens_styles_from_b_mask, "with A's own mask"),
                          (_tokens_batch_axis, "You indexed the batch axis")],
}


def test_every_exercise_has_two_wrong_answers():
    assert sorted(WRONG) == sorted(ALL) and all(len(v) >= 2 for v in WRONG.values())


@pytest.mark.parametrize("name, wrong, phrase", [(n, w, p) for n, cases in WRONG.items() for w, p in cases],
                         ids=lambda v: v if isinstance(v, str) and len(v) < 30 else "")
def test_a_wrong_answer_is_rejected_with_a_hint(name, wrong, phrase, capsys):
    ok, out = run(name, wrong, capsys)
    assert not ok and out.startswith("✗") and phrase in out, out
    with pytest.raises(exercises.ExerciseFailed):
        getattr(exercises, f"check_{name}")(wrong, strict=True, quiet=True)


# -- what a student's function may do to the check ---------------------------------------------------
def _first_data(args):
    """The first tensor or array among the arguments (or inside a list of them)."""
    for value in args:
        for item in (value if isinstance(value, list) else [value]):
            if isinstance(item, torch.Tensor | np.ndarray):
                return item
    return None


@pytest.mark.parametrize("name", [n for n in ALL if n != "tensor_shapes"])  # its inputs are a config and an int
def test_a_right_answer_that_changes_its_inputs_in_place_is_wrong(name, capsys):
    """Only the editing checks noticed it: the others handed the student copies and never looked."""
    right = solution(name)

    def changes_its_input(*args):
        answer = right(*args)
        data = _first_data(args)
        data += 1  # after the answer: the answer is right, the caller's data is not
        return answer

    ok, out = run(name, changes_its_input, capsys)
    assert not ok and "in place" in out and exercises.statuses()[name] == exercises.WRONG, out


@pytest.mark.parametrize("name, change, phrase", [
    ("class_cross_attention", lambda args: args[2].to_q.weight.mul_(2), "its weights"),
    ("embed_mask", lambda args: args[1].weight.zero_(), "its weights"),
    ("swap_style_codes", lambda args: args[0].train(), "training mode"),
    ("swap_shape_tokens", lambda args: args[0].register_forward_hook(lambda *a: None), "hooks"),
])
def test_a_right_answer_that_changes_the_model_it_was_given_is_wrong(name, change, phrase, capsys):
    right = solution(name)

    def student(*args):
        answer = right(*args)
        change(args)
        return answer

    ok, out = run(name, student, capsys)
    assert not ok and phrase in out and "changed" in out, out


def test_one_attempt_cannot_change_how_the_next_is_judged(capsys):
    """The editing checks' model was cached: zeroing its weights made every image alike, so a wrong
    answer was then judged correct."""
    def zeroes_the_model(model, a, ma, b, mb, classes):
        for p in model.parameters():
            p.zero_()
        return a

    ok, out = run("swap_style_codes", zeroes_the_model, capsys)
    assert not ok and "changed the model" in out, out
    ok, out = run("swap_style_codes", _style_global, capsys)
    assert not ok and "Every class took B's style" in out, out
    assert run("swap_style_codes", solution("swap_style_codes"), capsys)[0]


@pytest.mark.parametrize("name", ["spade_denorm", "attention_loss", "swap_style_codes"])
def test_an_answer_on_another_device_is_named_as_such(name, capsys):
    """Not "your function raised RuntimeError" from the check's own comparison."""
    right = solution(name)
    ok, out = run(name, lambda *args: right(*args).to("meta"), capsys)
    assert not ok and "on the device 'meta'" in out and "raised" not in out, out
    assert exercises.statuses()[name] == exercises.WRONG


class _Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("a message that cannot be made")


class _UnprintableIndexError(IndexError):  # the editing checks read an IndexError's message for a hint
    def __str__(self):
        raise RuntimeError("a message that cannot be made")


class _UnprintableTypeError(TypeError):  # as does the AUROC check, for a TypeError
    def __str__(self):
        raise ValueError("a message that cannot be made")


@pytest.mark.parametrize("name, error", [
    ("spade_denorm", SystemExit(3)), ("auroc", SystemExit()), ("spade_denorm", _Unprintable()),
    ("swap_style_codes", _UnprintableIndexError()), ("auroc", _UnprintableTypeError()),
], ids=lambda v: v if isinstance(v, str) else type(v).__name__)
def test_exit_and_an_unprintable_exception_are_reported_not_raised(name, error, capsys):
    def student(*args):
        raise error

    ok, out = run(name, student, capsys)
    assert not ok and exercises.statuses()[name] == exercises.ERROR and type(error).__name__ in out, out
    assert ("sys.exit()" in out) if isinstance(error, SystemExit) else ("message cannot be shown" in out)


def test_the_interrupt_button_still_stops_a_check():
    def interrupted(*args):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        exercises.check_spade_denorm(interrupted, quiet=True)


# -- student versions ----------------------------------------------------------------------------
def _solution_lines(path: Path) -> list[str]:
    """Distinctive lines inside the solution regions of a source notebook (code and model answers)."""
    lines = []
    for cell in nbformat.read(path, as_version=4).cells:
        for region in re.findall(r"BEGIN SOLUTION[^\n]*\n(.*?)\n[^\n]*END SOLUTION", cell.source, flags=re.S):
            lines += [line.strip() for line in region.splitlines() if len(line.strip()) > 30]
    return lines


def test_model_answers_hide_their_delimiters_in_html_comments():
    """A markdown line "### BEGIN SOLUTION" would render as a heading (and enter the site's contents)."""
    for path in NOTEBOOKS:
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "markdown":
                marks = [line for line in cell.source.splitlines() if "SOLUTION" in line]
                assert all(m in ("<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->") for m in marks), (path.name, i)


def test_make_student_removes_every_solution(tmp_path):
    assert make_student.main(["--out", str(tmp_path)]) == 0
    for path in NOTEBOOKS:
        text = (tmp_path / path.name).read_text()
        nb = nbformat.read(tmp_path / path.name, as_version=4)
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "strict=True"):
            assert marker not in text, f"{path.name}: {marker!r} left in the student version"
        leaked = [line for line in _solution_lines(path) if line in text]
        assert _solution_lines(path) and not leaked, f"{path.name}: solution text left: {leaked[:3]}"
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
        assert sum("raise NotImplementedError()" in c.source for c in nb.cells) == 2  # two exercises per notebook
        assert sum(c.source == "YOUR ANSWER HERE" for c in nb.cells) == 2  # two questions per notebook


def test_make_student_refuses_a_solution_outside_a_solution_cell():
    cell = nbformat.v4.new_code_cell("x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION")
    with pytest.raises(ValueError, match="test: .*non-solution cell.* Fix: give the cell nbgrader's metadata"):
        make_student.student_cell(cell, "test")


def test_student_badges_and_clone_addresses_lead_to_the_students_copy(tmp_path):
    """A student who clicks the badge (or whose first cell clones) must land on the students' copy
    ([tool.ca2sis] in pyproject.toml), never on the instructors' notebooks that hold the solutions."""
    colab = load_script("scripts/colab.py")
    repo, branch = colab.read_location(ROOT)
    student_repo, student_branch = colab.read_student_location(ROOT)
    assert (student_repo, student_branch) != (repo, branch)
    assert make_student.main(["--out", str(tmp_path)]) == 0
    for path in NOTEBOOKS:
        nb = nbformat.read(tmp_path / path.name, as_version=4)
        text = (tmp_path / path.name).read_text()
        badge = next(c for c in nb.cells if colab.BADGE_TAG in c.metadata.get("tags", []))
        assert badge.source == colab.badge_source(student_repo, student_branch, path.name)
        first = next(c for c in nb.cells if c.cell_type == "code").source
        assert first.startswith(colab.setup_block(colab.repo_url(student_repo), student_branch)), path.name
        assert colab.colab_url(repo, branch) not in text, f"{path.name}: a link to the instructors' notebooks"


def test_the_students_copy_cannot_be_the_instructors(tmp_path):
    colab = load_script("scripts/colab.py")
    text = (ROOT / "pyproject.toml").read_text()
    repo, branch = colab.location(text)
    with pytest.raises(ValueError, match="would open the solutions"):
        colab.student_location(colab.write_student_location(text, repo, branch))
    with pytest.raises(ValueError, match="student_branch"):
        colab.student_location(text.replace(colab.TOOL_TABLE, "[tool.other]"))
    moved = colab.write_student_location(text, "school/ca2sis-students", "main")
    assert colab.student_location(moved) == ("school/ca2sis-students", "main")
    assert colab.location(moved) == (repo, branch)  # the instructors' location is left alone


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_notebook_runs_and_reports_not_yet(path, tmp_path):
    student = tmp_path / "student.ipynb"
    nbformat.write(make_student.student_notebook(path), student)
    out_dir = tmp_path / "outputs"
    papermill.execute_notebook(str(student), str(tmp_path / "executed.ipynb"), parameters=smoke_parameters(out_dir),
                               cwd=str(tmp_path), kernel_name="python3", execution_timeout=CELL_TIMEOUT_S,
                               progress_bar=False)
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["exercises"] == dict.fromkeys(exercises.EXERCISES[path.stem], exercises.NOT_YET)
    assert metrics["exercises_passed"] == 0
