"""Memory-saving code of the generator: the same function as the plain modules, with fewer activations held.

The paper-scale model at 256² keeps tensors for backward that do not fit a laptop GPU; the two
tools here trade a little recomputation for memory without changing what the model computes.

    BlockedGEGLUFeedForward     the transformer's GEGLU feed-forward as one autograd function, run
                                over blocks of tokens: keeps x, a and gate for backward (not also
                                GELU(gate) and the product, as autograd would), and never holds a
                                gradient as wide as [a, gate] whole. On by default (``FeedForward.lean``).
    checkpointed_token_chunks   memory mode (``gradient_checkpointing``): the per-token part of a
                                transformer block run over chunks of tokens, each recomputed in backward.

How they are tested (tests/test_model.py): the blocked feed-forward equals the plain modules'
output and gradients to float rounding (weight gradients are summed block by block), with one
block and with many ragged ones, passes ``torch.autograd.gradcheck`` in float64, keeps at least
two activation-wide tensors fewer for backward (measured with saved-tensor hooks), and is not used
without gradients (``test_lean_feed_forward_equals_the_plain_path_and_keeps_less_for_backward``);
token chunks give the same outputs, logits and input gradients as the whole block
(``test_memory_mode_token_chunks_are_exact``). What they save and cost is measured in
docs/performance.md (the blocked feed-forward) and benchmarks/results/cpu_memory_mode.md (memory mode).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint


def accumulate(total: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """``total += a @ b`` in place (``addmm`` with ``out``: unlike ``addmm_``, FLOP counters see it)."""
    return torch.addmm(total, a, b, out=total)


class BlockedGEGLUFeedForward(torch.autograd.Function):
    """The whole feed-forward, ``Linear_out(a · GELU(gate))`` with ``[a, gate] = Linear_in(x)``, as
    one autograd function that works through blocks of ``ROWS`` tokens.

    A block's ``a`` and ``gate`` are computed (each contiguous: GELU of a strided half of
    ``[a, gate]`` was almost 3× slower on a CPU), read by GELU and the product, and the product goes
    through the output Linear before the next block starts, so the temporaries are a block, not a
    layer, wide and are read soon after they are written. For backward it keeps ``x``, ``a`` and
    ``gate`` (autograd would also keep GELU(gate) and the product, two more tensors as wide as
    ``a``: with ``a`` and ``gate`` the largest activations of the model at 128² and 256²);
    GELU(gate) and the product are recomputed per block, elementwise and cheap, and the gradients
    of ``x`` and of the weights are accumulated block by block, so no gradient as wide as
    ``[a, gate]`` is ever held whole. No matmul is redone (this is not checkpointing). Results
    equal the plain modules' to float rounding: the weight gradients are summed block by block
    instead of in one matmul (tested).
    """

    ROWS = 2048  # tokens per block on a CPU (of 1024, 2048, 4096: fastest at the tiny preset's shapes)
    ROWS_GPU = 16384  # on a GPU memory traffic matters less than the number of kernel launches

    @staticmethod
    def block_rows(x: Tensor) -> int:
        return BlockedGEGLUFeedForward.ROWS if x.device.type == "cpu" else BlockedGEGLUFeedForward.ROWS_GPU

    @staticmethod
    def forward(ctx, x: Tensor, w_in: Tensor, b_in: Tensor, w_out: Tensor, b_out: Tensor) -> Tensor:
        rows = x.reshape(-1, x.shape[-1])  # (R, d)
        d_ff = w_out.shape[1]
        w_a, w_gate = w_in[:d_ff].t(), w_in[d_ff:].t()  # (d, d_ff) each: GEGLU's split, a first
        a, gate = rows.new_empty(2, rows.shape[0], d_ff)  # (R, d_ff) each
        out = rows.new_empty(rows.shape[0], w_out.shape[0])  # (R, d)
        step = BlockedGEGLUFeedForward.block_rows(x)
        for start in range(0, rows.shape[0], step):
            block = slice(start, start + step)
            torch.addmm(b_in[:d_ff], rows[block], w_a, out=a[block])
            torch.addmm(b_in[d_ff:], rows[block], w_gate, out=gate[block])
            product = F.gelu(gate[block]).mul_(a[block])  # (r, d_ff)
            torch.addmm(b_out, product, w_out.t(), out=out[block])
        ctx.save_for_backward(rows, a, gate, w_in, w_out)
        return out.view(*x.shape[:-1], out.shape[-1])  # (..., d)

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        rows, a, gate, w_in, w_out = ctx.saved_tensors
        d_ff = a.shape[1]
        grad_rows = grad_out.reshape(-1, grad_out.shape[-1])  # (R, d)
        grad_x = torch.empty_like(rows)  # (R, d)
        grad_w_in, grad_b_in = torch.zeros_like(w_in), w_in.new_zeros(2 * d_ff)  # (2·d_ff, d), (2·d_ff,)
        grad_w_out = torch.zeros_like(w_out)  # (d, d_ff)
        step = BlockedGEGLUFeedForward.block_rows(rows)
        for start in range(0, rows.shape[0], step):
            block = slice(start, start + step)
            a_block, gate_block, grad_block = a[block], gate[block], grad_rows[block]
            gelu_gate = F.gelu(gate_block)  # (r, d_ff), recomputed
            accumulate(grad_w_out, grad_block.t(), gelu_gate * a_block)
            grad_product = grad_block @ w_out  # (r, d_ff)
            grad_a = grad_product * gelu_gate
            grad_gate = torch.ops.aten.gelu_backward(grad_product.mul_(a_block), gate_block)
            accumulate(torch.mm(grad_a, w_in[:d_ff], out=grad_x[block]), grad_gate, w_in[d_ff:])
            accumulate(grad_w_in[:d_ff], grad_a.t(), rows[block])
            accumulate(grad_w_in[d_ff:], grad_gate.t(), rows[block])
            grad_b_in[:d_ff] += grad_a.sum(0)
            grad_b_in[d_ff:] += grad_gate.sum(0)
        grad_x = grad_x.view(*grad_out.shape[:-1], rows.shape[-1])  # (..., d)
        return grad_x, grad_w_in, grad_b_in, grad_w_out, grad_rows.sum(0)


def checkpointed_token_chunks(per_token: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]], x: Tensor,
                              styles: Tensor, chunk_tokens: int) -> tuple[Tensor, Tensor]:
    """``per_token(x, styles)`` -> (x (B, N, inner), logits (B, heads, N, K)), computed over chunks of
    ``chunk_tokens`` tokens, each recomputed in backward instead of kept (valid only where every
    token is computed on its own: no self-attention inside ``per_token``)."""
    pieces = [checkpoint(per_token, chunk, styles, use_reentrant=False) for chunk in x.split(chunk_tokens, dim=1)]
    return torch.cat([p[0] for p in pieces], dim=1), torch.cat([p[1] for p in pieces], dim=2)
