"""Quote the measured claim verdicts into docs/claims.md, so the page never restates numbers by hand.

Two blocks of ``docs/claims.md`` are generated, each between a pair of marker comments:

* ``claims-verdicts``: notebook 02's verdicts, from ``outputs/02_spade_vs_cross_attention/metrics.json``
  (written by a full, non-smoke run of the notebook). The file must hold a mapping::

      "claims": {"C1a": {"verdict": "agrees|disagrees|inconclusive|level fails", "statement": "...",
                         "difference": 0.0012, "ci95": [0.0003, 0.0021], "metric": "...",
                         "interval_verdict": "agrees", "exceptions": ["mouth"]}, ...}

  (``interval_verdict`` and ``exceptions`` are optional: the verdict column then says what the
  interval alone says beside a failed level, and for which classes an agreement does not hold.)

  Keys are a claim ID of docs/claims.md (``C1`` … ``C8``), optionally with a letter or a dotted
  number when one claim is tested by several measurements (``C1a``, ``C1b``, ``C6.2``).
* ``claims-attention``: the attention-to-mask agreement of the shipped CA²-SIS toy model (claim C3),
  from ``ca2sis_lib/weights/quality.json``.

Usage::

    python scripts/quote_claims.py            # rewrite both blocks in docs/claims.md
    python scripts/quote_claims.py --check    # exit 1 if docs/claims.md differs from the sources

A smoke run's metrics (a handful of pairs) are refused unless ``--allow-smoke`` is given: their
intervals say nothing about the claims. Without a metrics file, only the C3 block is rewritten.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ca2sis_lib.claims import INTERVAL_VERDICTS, VERDICTS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "claims.md"
METRICS = ROOT / "outputs" / "02_spade_vs_cross_attention" / "metrics.json"
QUALITY = ROOT / "ca2sis_lib" / "weights" / "quality.json"

CLAIM_IDS = tuple(f"C{i}" for i in range(1, 9))  # the claims listed in docs/claims.md
KEY = re.compile(r"^(C\d+)([a-z]|\.\d+)?$")


def claim_base(key: str) -> str:
    """'C1a' -> 'C1'; a key that names no listed claim is an error that says what is allowed."""
    match = KEY.match(key)
    if not match or match.group(1) not in CLAIM_IDS:
        raise ValueError(f"claim key {key!r} names no claim of docs/claims.md; use one of {', '.join(CLAIM_IDS)}, "
                         "optionally followed by a letter or '.N' (C1a, C6.2)")
    return match.group(1)


def _sort_key(key: str) -> tuple[int, str]:
    match = KEY.match(key)
    assert match is not None
    return int(match.group(1)[1:]), match.group(2) or ""


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def check_claim(key: str, entry: Any) -> dict[str, Any]:
    """Validate one entry of metrics['claims']; return it with ci95 as a pair of floats."""
    claim_base(key)
    if not isinstance(entry, Mapping):
        raise ValueError(f"claims[{key!r}] must be a mapping, got {type(entry).__name__}")
    missing = [f for f in ("verdict", "statement", "difference", "ci95", "metric") if f not in entry]
    if missing:
        raise ValueError(f"claims[{key!r}] lacks {missing}; notebook 02 must write all five fields")
    if entry["verdict"] not in VERDICTS:
        raise ValueError(f"claims[{key!r}].verdict is {entry['verdict']!r}; allowed: {', '.join(VERDICTS)}")
    for field in ("statement", "metric"):
        if not isinstance(entry[field], str) or not entry[field].strip():
            raise ValueError(f"claims[{key!r}].{field} must be a non-empty string")
    ci = entry["ci95"]
    if not isinstance(ci, Sequence) or isinstance(ci, str) or len(ci) != 2:
        raise ValueError(f"claims[{key!r}].ci95 must be [low, high], got {ci!r}")
    low, high = (_number(v, f"claims[{key!r}].ci95") for v in ci)
    if low > high:
        raise ValueError(f"claims[{key!r}].ci95 = [{low}, {high}] has low > high")
    if entry.get("interval_verdict", "agrees") not in INTERVAL_VERDICTS:
        raise ValueError(f"claims[{key!r}].interval_verdict is {entry['interval_verdict']!r}; allowed: "
                         f"{', '.join(INTERVAL_VERDICTS)}")
    exceptions = entry.get("exceptions", [])
    if not isinstance(exceptions, list) or not all(isinstance(e, str) and e for e in exceptions):
        raise ValueError(f"claims[{key!r}].exceptions must be a list of class names, got {exceptions!r}")
    return {**entry, "difference": _number(entry["difference"], f"claims[{key!r}].difference"), "ci95": (low, high)}


def _fmt(x: float) -> str:
    return f"{x:+.3g}" if x else "0"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _verdict(entry: Mapping[str, Any]) -> str:
    """'**agrees**, not for mouth' or '**level fails** (interval: inconclusive)': the verdict and what qualifies it
    (the classes going the other way qualify an agreement; the sentence lists them under any verdict)."""
    text = f"**{entry['verdict']}**"
    if entry["verdict"] == "level fails" and "interval_verdict" in entry:
        text += f" (interval: {entry['interval_verdict']})"
    if entry["verdict"] == "agrees" and entry.get("exceptions"):
        text += f", not for {', '.join(entry['exceptions'])}"
    return text


def render_verdicts(metrics: Mapping[str, Any], source: str = METRICS.relative_to(ROOT).as_posix(),
                    allow_smoke: bool = False) -> str:
    """The verdict table (Markdown) for metrics['claims'], sorted by claim ID."""
    claims = metrics.get("claims")
    if not isinstance(claims, Mapping) or not claims:
        raise ValueError(f"{source} has no 'claims' mapping of claim ID -> verdict entry; "
                         "re-run notebook 02 (full run) to write one")
    protocol = metrics.get("protocol") if isinstance(metrics.get("protocol"), Mapping) else {}
    smoke = bool(metrics.get("smoke", protocol.get("smoke", False)))
    if smoke and not allow_smoke:
        raise ValueError(f"{source} comes from a smoke run; its intervals mean nothing. Run notebook 02 "
                         "in full, or pass --allow-smoke to render it anyway")
    pairs = metrics.get("pairs", protocol.get("pairs"))
    lines = [f"Quoted from `{source}` by `scripts/quote_claims.py`"
             + (f" ({pairs} held-out pairs{', SMOKE RUN' if smoke else ''})." if pairs is not None else "."),
             "",
             "| claim | verdict | what was measured | difference | 95 % interval | in words |",
             "|---|---|---|---:|---|---|"]
    checked = {key: check_claim(key, entry) for key, entry in claims.items()}
    for key in sorted(checked, key=_sort_key):
        entry = checked[key]
        low, high = entry["ci95"]
        lines.append(f"| {key} | {_verdict(entry)} | {_cell(entry['metric'])} | {_fmt(entry['difference'])} "
                     f"| [{_fmt(low)}, {_fmt(high)}] | {_cell(entry['statement'])} |")
    return "\n".join(lines)


def render_attention(quality: Mapping[str, Any], source: str = QUALITY.relative_to(ROOT).as_posix()) -> str:
    """Claim C3's numbers: attention-argmax IoU with the mask per layer, shipped CA²-SIS toy model."""
    try:
        model = quality["ca2sis_tiny_toy"]
        miou = model["attention_miou"]
        per_class = model["attention_iou_per_class"]
    except KeyError as err:
        raise ValueError(f"quality.json lacks {err}; regenerate it with `make checkpoints`") from None
    lines = [f"Quoted from `{source}` by `scripts/quote_claims.py` "
             f"({model.get('samples', '?')} held-out toy samples, {model.get('split', '?')}).",
             "",
             "| layer | mIoU of the attention argmax with the mask | lowest class | highest class |",
             "|---|---:|---|---|"]
    for layer in sorted(miou, key=lambda name: int(name.split("@")[-1])):
        classes = per_class.get(layer, {})
        low = min(classes.items(), key=lambda kv: kv[1]) if classes else ("—", float("nan"))
        high = max(classes.items(), key=lambda kv: kv[1]) if classes else ("—", float("nan"))
        lines.append(f"| `{layer}` | {miou[layer]:.2f} | {low[0]} {low[1]:.2f} | {high[0]} {high[1]:.2f} |")
    return "\n".join(lines)


def splice(text: str, name: str, block: str) -> str:
    """Replace what lies between ``<!-- name:begin -->`` and ``<!-- name:end -->`` by ``block``."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"docs/claims.md must hold exactly one '{begin}' followed by one '{end}'")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return f"{head}{begin}\n{block}\n{end}{tail}"


def update(text: str, metrics: Mapping[str, Any] | None, quality: Mapping[str, Any],
           allow_smoke: bool = False, metrics_source: str = METRICS.relative_to(ROOT).as_posix()) -> str:
    """docs/claims.md's text with its generated blocks rewritten (the verdicts only if metrics are given)."""
    text = splice(text, "claims-attention", render_attention(quality))
    if metrics is not None:
        text = splice(text, "claims-verdicts", render_verdicts(metrics, metrics_source, allow_smoke))
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", type=Path, default=METRICS, help="notebook 02's metrics.json")
    parser.add_argument("--quality", type=Path, default=QUALITY, help="the shipped models' quality.json")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the page to update")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the page is stale")
    parser.add_argument("--allow-smoke", action="store_true", help="render a smoke run's metrics anyway")
    args = parser.parse_args(argv)
    metrics = json.loads(args.metrics.read_text()) if args.metrics.exists() else None
    if metrics is None:
        print(f"{args.metrics} not found: only the C3 block is rendered (run notebook 02 for the verdicts)")
    old = args.docs.read_text(encoding="utf-8")
    try:
        path = args.metrics.resolve()
        source = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
        new = update(old, metrics, json.loads(args.quality.read_text()), args.allow_smoke, source)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check:
        if new != old:
            print(f"{args.docs} is stale: run python scripts/quote_claims.py", file=sys.stderr)
            return 1
        print(f"{args.docs} is up to date")
        return 0
    args.docs.write_text(new, encoding="utf-8")
    print(f"wrote {args.docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
