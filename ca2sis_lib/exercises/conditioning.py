"""Notebook 02 (SPADE vs cross-attention): SPADE's de-normalisation, and one class-adaptive
cross-attention layer from its q/k/v projections."""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import _reference as ref
from ._harness import Case, Mismatch, as_tensor, call_student, check_shape, check_values, close, lazy, run_check


def _spade_case(batch: int, channels: int, h: int, w: int) -> Callable:
    x = torch.randn(batch, channels, h, w) * 3 + 1.5  # not already normalised
    gamma, beta = torch.randn(batch, channels, h, w), torch.randn(batch, channels, h, w)
    expected = ref.spade_denorm(x, gamma, beta)

    def normalised(dims: tuple[int, ...], unbiased: bool = False) -> torch.Tensor:
        mean = x.mean(dims, keepdim=True)
        return (x - mean) / torch.sqrt(x.var(dims, keepdim=True, unbiased=unbiased) + 1e-5)

    def run(student: Callable) -> None:
        answer = call_student(student, x.clone(), gamma.clone(), beta.clone(), names=("x", "gamma", "beta"))
        got = as_tensor(answer, "the output")
        check_shape(got, expected.shape, "the output", ("B", "C", "H", "W"))
        if close(got, expected):
            return
        hints = []
        bn = normalised((0, 2, 3))
        if close(got, bn * gamma + beta):
            hints.append("With γ = 0 and β = 0 SPADE should hand on the normalised features unchanged; does yours?")
        elif any(close(got, normalised(dims) * (1 + gamma) + beta) for dims in ((2, 3), (1, 2, 3), (0, 1, 2, 3))):
            hints.append("Your mean and variance are taken over the wrong dimensions: a BatchNorm computes one "
                         "mean per channel — pooled over which dimensions?")
        elif close(got, normalised((0, 2, 3), unbiased=True) * (1 + gamma) + beta):
            hints.append("Almost: BatchNorm normalises with the biased variance (divide by n, not n − 1).")
        elif close(got, x * (1 + gamma) + beta):
            hints.append("The features must be normalised before they are modulated.")
        check_values(got, expected, "the output", hints=hints)

    return run


def check_spade_denorm(student: Callable, strict: bool = False, quiet: bool = False) -> bool:
    """``spade_denorm(x, gamma, beta) -> BN(x)·(1 + γ) + β`` with a parameter-free BatchNorm (easy)."""
    def cases() -> list[Case]:
        return [Case("a 4×6×8×8 feature map", lazy(_spade_case, 4, 6, 8, 8)),
                Case("batch 1", lazy(_spade_case, 1, 3, 8, 8)),
                Case("a non-square 5×12 feature map", lazy(_spade_case, 2, 4, 5, 12))]
    return run_check("spade_denorm", student, cases, strict, quiet)


def _weights_without_scale(layer: ref.CrossAttention, x: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    q = layer.split_heads(layer.to_q(x))
    k = layer.split_heads(layer.to_k(styles))
    return (q @ k.transpose(-1, -2)).softmax(dim=-1)


def _attention_case(batch: int, pixels: int, channels: int, classes: int, style_dim: int, heads: int) -> Callable:
    layer = ref.CrossAttention(channels, style_dim, heads).eval()
    for p in layer.parameters():
        p.data.mul_(3.0)  # larger scores: the scale and the softmax axis matter visibly
    x, styles = torch.randn(batch, pixels, channels), torch.randn(batch, classes, style_dim)
    out, logits = layer(x, styles)
    weights = logits.softmax(dim=-1)  # (B, heads, N, K)

    def run(student: Callable) -> None:
        result = call_student(student, x.clone(), styles.clone(), layer, names=("x", "styles", "layer"))
        if not isinstance(result, tuple | list) or len(result) != 2:
            raise Mismatch("return two tensors: the output (B, N, C) and the attention weights (B, heads, N, K)")
        got_out, got_weights = as_tensor(result[0], "the output"), as_tensor(result[1], "the attention weights")
        check_shape(got_weights, weights.shape, "the attention weights", ("B", "heads", "N pixels", "K classes"))
        sums = got_weights.sum(dim=-1)
        if not bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-4)):
            raise Mismatch("your weights do not sum to 1 over the classes — over which axis did you take the softmax?")
        if not close(got_weights, weights):
            hint = []
            if close(got_weights, _weights_without_scale(layer, x, styles)):
                hint.append("Your weights are too peaked: scaled dot-product attention divides the scores by "
                            "something before the softmax — by what?")
            elif heads > 1:
                hint.append("Check how you split the channels into heads: the library splits 'b n (h d)', heads first.")
            check_values(got_weights, weights, "the attention weights", hints=hint)
        check_shape(got_out, out.shape, "the output", ("B", "N pixels", "C"))
        check_values(got_out, out, "the output", hints=[
            "The weights are right: each pixel's output is the weighted sum of the value vectors, heads merged "
            "back, then to_out."])

    return run


def check_class_cross_attention(student: Callable, strict: bool = False, quiet: bool = False) -> bool:
    """``class_cross_attention(x (B, N, C), styles (B, K, D), layer) -> (out, weights)`` (hard)."""
    def cases() -> list[Case]:
        return [Case("one head, 16 pixels, 4 classes", lazy(_attention_case, 2, 16, 8, 4, 6, 1)),
                Case("4 heads, batch 1, 12 classes", lazy(_attention_case, 1, 20, 16, 12, 10, 4)),
                Case("2 heads, 2 classes", lazy(_attention_case, 3, 9, 8, 2, 4, 2))]
    return run_check("class_cross_attention", student, cases, strict, quiet)

