"""The toy parser that judges layout fidelity: shipped accuracy, known answers, errors, round trip."""

import json

import pytest
import torch

from ca2sis_lib.data.toy import toy_batch
from ca2sis_lib.segmenter import (
    ToySegmenter,
    layout_fidelity,
    load_segmenter,
    save_segmenter,
    train_segmenter,
)
from ca2sis_lib.shipped import SHIPPED_DIR


@pytest.fixture(scope="module")
def test_data():
    return toy_batch(40, "test")


def test_shipped_parser_reads_real_toy_faces(test_data):
    images, labels = test_data
    parser = load_segmenter()
    scores = layout_fidelity(parser, images, labels)
    shipped = json.loads((SHIPPED_DIR / "quality.json").read_text())["toy_segmenter"]
    assert shipped["test_miou"] >= 0.85 and scores["miou"] >= 0.8 and scores["pixel_accuracy"] >= 0.97
    assert sum(p.numel() for p in parser.parameters()) == shipped["parameters"]
    assert (SHIPPED_DIR / "toy_segmenter.pt").stat().st_size <= 2 * 2**20  # the 2 MB budget


def test_the_judge_can_fail(test_data):
    images, labels = test_data
    parser = load_segmenter()
    wrong = layout_fidelity(parser, images, labels.roll(1, dims=0))  # every image against another layout
    right = layout_fidelity(parser, images, labels)
    assert wrong["miou"] < right["miou"] - 0.3
    flat = layout_fidelity(parser, torch.zeros_like(images), labels)  # a grey image is no face
    assert flat["miou"] < 0.2


def test_errors_name_the_problem(tmp_path, test_data):
    images, labels = test_data
    parser = ToySegmenter()
    with pytest.raises(ValueError, match="differ in size"):
        layout_fidelity(parser, images, labels[:, :32, :32])
    with pytest.raises(ValueError, match="divisible by 4"):
        parser(torch.zeros(1, 3, 30, 30))
    torch.save({"format": "something else"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a toy segmenter"):
        load_segmenter(tmp_path / "x.pt")


def test_training_and_round_trip(tmp_path):
    model, log = train_segmenter(steps=3, batch_size=4, train_samples=8, log_every=1)
    assert len(log) == 3 and all(torch.isfinite(torch.tensor(r["loss"])) for r in log)
    path = save_segmenter(model, tmp_path / "parser.pt", {"steps": 3})
    again = load_segmenter(path)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.allclose(again(x), model(x), atol=5e-2)  # fp16 weights
    assert again.predict(x).shape == (2, 64, 64)
