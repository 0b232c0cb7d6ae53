"""The equations of docs/architecture.md stand beside the lines that implement them (labml style):
each number is tagged on the page, and repeated in a comment directly above its line of code."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# number, file, a piece of the line that implements it
BESIDE = [
    (4, "ca2sis_lib/models/attention.py", "logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, h, HW, K)"),
    (5, "ca2sis_lib/models/attention.py", "out = logits.softmax(dim=-1) @ v"),
    (6, "ca2sis_lib/losses.py", "bce = F.binary_cross_entropy_with_logits(mean_logits, target"),
    (8, "ca2sis_lib/losses.py", "pos_weight = (negatives / positives.clamp_min(1)).clamp(1.0, pos_weight_max)"),
    (11, "ca2sis_lib/models/spade.py", "return normalized * (1 + gamma) + beta"),
    (12, "ca2sis_lib/models/sean.py", "return w_gamma * gamma_s + (1 - w_gamma) * gamma_o"),
]
ON_THE_LINE = [  # short enough to stand on the line itself or in the function's docstring
    (7, "ca2sis_lib/losses.py", "return torch.stack(losses).mean()  # (7)"),
    (10, "ca2sis_lib/training/steps.py", "(docs/architecture.md#discriminator-and-training-losses, (10))"),
]


@pytest.mark.parametrize("number, path, line", BESIDE)
def test_the_comment_above_the_line_names_its_equation(number, path, line):
    assert f"\\tag{{{number}}}" in (ROOT / "docs/architecture.md").read_text()
    lines = (ROOT / path).read_text().splitlines()
    at = next(i for i, text in enumerate(lines) if line in text)
    comment = []
    for text in reversed(lines[:at]):  # the comment block right above the line
        if not text.strip().startswith("#"):
            break
        comment.insert(0, text)
    assert re.search(rf"#\s*\({number}\)", "\n".join(comment)), f"{path}: no ({number}) above {line!r}"


@pytest.mark.parametrize("number, path, text", ON_THE_LINE)
def test_the_equation_number_stands_on_the_line_or_in_its_docstring(number, path, text):
    assert f"\\tag{{{number}}}" in (ROOT / "docs/architecture.md").read_text()
    assert text in (ROOT / path).read_text()
