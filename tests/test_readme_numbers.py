"""The README's numbers about the shipped models are those of ca2sis_lib/weights/quality.json.

The README states them in one table (header ``| shipped model |``), each rounded as written; this
test recomputes every cell from quality.json with the same number of decimals. Quality numbers
anywhere else in the README would escape the check, so they are refused: prose links to docs/
(notebook 02's verdicts are quoted in docs/claims.md, not restated).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
QUALITY = json.loads((ROOT / "ca2sis_lib" / "weights" / "quality.json").read_text())

# (model, column) -> the quality.json values the cell states, in order: (key path, scale, least decimals)
EXPECTED: dict[tuple[str, str], list[tuple[tuple[str, ...], float, int]]] = {
    ("ca2sis_tiny_toy", "parameters (M)"): [(("generator_parameters",), 1e-6, 1)],
    ("ca2sis_tiny_toy", "PSNR (dB)"): [(("psnr",), 1.0, 2)],
    ("ca2sis_tiny_toy", "SSIM"): [(("ssim",), 1.0, 3)],
    ("ca2sis_tiny_toy", "layout or attention score"): [(("attention_miou", "cross@32"), 1.0, 2)],
    ("sean_tiny_toy", "parameters (M)"): [(("generator_parameters",), 1e-6, 1)],
    ("sean_tiny_toy", "PSNR (dB)"): [(("psnr",), 1.0, 2)],
    ("sean_tiny_toy", "SSIM"): [(("ssim",), 1.0, 3)],
    ("toy_segmenter", "parameters (M)"): [(("parameters",), 1e-6, 2)],
    ("toy_segmenter", "layout or attention score"): [(("test_miou",), 1.0, 2)],
    ("ca2sis_tiny_toy_mapping", "parameters (M)"): [(("mapping_parameters",), 1e-6, 1)],
    ("ca2sis_tiny_toy_mapping", "layout or attention score"): [
        (("noise_layout_miou",), 1.0, 2), (("reconstruction_layout_miou",), 1.0, 2),
        (("noise_diversity",), 1.0, 2), (("real_style_diversity",), 1.0, 2)],
}
NUMERIC_COLUMNS = {"parameters (M)", "PSNR (dB)", "SSIM"}
QUALITY_WORDS = re.compile(r"\b(PSNR|SSIM|RMSE|mIoU|IoU|diversity|dB)\b[^\n|]{0,40}?\d+\.\d+|\d+\.\d+\s*dB\b")


def table_lines(text: str) -> list[str]:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("| shipped model |")), None)
    assert start is not None, "README.md has no '| shipped model |' table"
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return lines[start:end]


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def stated_numbers(column: str, cell: str) -> list[str]:
    """The numbers a cell states: the whole cell in a numeric column, else those after a colon."""
    if cell in {"—", "-", ""}:
        return []
    if column == "layout or attention score":
        return re.findall(r":\s*(\d+(?:\.\d+)?)", cell)
    if column not in NUMERIC_COLUMNS:  # words only: a number there would go unchecked
        assert not re.search(r"\d+\.\d+", cell), f"column {column!r} states a number: {cell!r}"
        return []
    assert re.fullmatch(r"\d+(?:\.\d+)?", cell), f"cell {cell!r} of column {column!r} is not a plain number"
    return [cell]


def lookup(model: str, path: tuple[str, ...]) -> float:
    value = QUALITY[model]
    for key in path:
        value = value[key]
    return float(value)


def readme_table() -> dict[tuple[str, str], list[str]]:
    lines = table_lines(README.read_text(encoding="utf-8"))
    header = cells(lines[0])
    table = {}
    for line in lines[2:]:
        row = cells(line)
        model = row[0].strip("`")
        for column, cell in zip(header[1:], row[1:]):
            numbers = stated_numbers(column, cell)
            if numbers:
                table[(model, column)] = numbers
    return table


def test_every_shipped_model_has_a_row_and_every_row_a_model():
    models = {cells(line)[0].strip("`") for line in table_lines(README.read_text(encoding="utf-8"))[2:]}
    shipped = {name for name in QUALITY if not name.startswith("reference_")}
    assert models == shipped


def test_the_table_states_exactly_the_checked_cells():
    assert set(readme_table()) == set(EXPECTED)


@pytest.mark.parametrize("cell", sorted(EXPECTED), ids=lambda c: f"{c[0]}:{c[1]}")
def test_each_number_equals_quality_json_rounded_as_written(cell):
    model, _ = cell
    stated = readme_table()[cell]
    expected = EXPECTED[cell]
    assert len(stated) == len(expected), f"{cell}: states {stated}, expected {len(expected)} numbers"
    for text, (path, scale, least) in zip(stated, expected):
        decimals = len(text.partition(".")[2])
        assert decimals >= least, f"{cell}: {text} is rounded too coarsely (at least {least} decimals)"
        value = lookup(model, path) * scale
        assert f"{value:.{decimals}f}" == text, f"{cell}: README says {text}, quality.json gives {value}"


def test_no_quality_number_outside_the_table():
    text = README.read_text(encoding="utf-8")
    table = set(table_lines(text))
    prose = "\n".join(line for line in text.splitlines() if line not in table)
    hits = [m.group(0) for m in QUALITY_WORDS.finditer(prose)]
    assert not hits, f"quality numbers outside the checked table (move them into it, or link to docs/): {hits}"


def test_a_drifted_number_is_caught():
    value = lookup("ca2sis_tiny_toy", ("ssim",))
    assert f"{value:.3f}" != f"{value + 0.001:.3f}"
    assert stated_numbers("layout or attention score", "mIoU at 32²: 0.73") == ["0.73"]
