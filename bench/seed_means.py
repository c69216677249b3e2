"""The mean over training seeds of each recipe in `bench/learning.py` result files: a recipe
trained once per seed in separate runs (``--train-seeds 1`` in one, ``--train-seeds 2`` in
another) is pooled here, question by question, from the rows' recorded answers (``correct``).

Every file must share the reference row (``SFT``: the same benchmark, answered alike); a
recipe with two or more seeds gets its seeds' mean score per question minus the reference,
with a 95% paired-bootstrap interval over the questions, and each training its own.

Usage: ``python bench/seed_means.py bench/results/learning-reasoner-sft*.json
[--out bench/results/learning-reasoner-sft-seed-means.json]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import emit, header, seed_means

REF = "SFT"


def pooled_rows(paths: list[Path]) -> dict[str, dict[str, float]]:
    """Each row's per-question scores from ``paths``, the reference row checked to be the same
    in all of them; a row label found in two files is refused (which would count?)."""
    scores: dict[str, dict[str, float]] = {}
    source: dict[str, Path] = {}
    for path in paths:
        rows = json.loads(path.read_text())["rows"]
        for label, row in rows.items():
            if "correct" not in row:
                raise SystemExit(f"{path}: row {label!r} has no per-question answers "
                                 "('correct'); rerun it with this bench/learning.py")  # fmt: skip
            got = {q: float(v) for q, v in row["correct"].items()}
            if label == REF:
                if REF in scores and scores[REF] != got:
                    raise SystemExit(f"{path}: its {REF} row differs from {source[REF]}'s: not "
                                     "the same benchmark, answered alike")  # fmt: skip
            elif label in scores:
                raise SystemExit(f"{path}: row {label!r} is also in {source[label]}")
            scores[label], source[label] = got, path
    if REF not in scores:
        raise SystemExit(f"no {REF} row in {[str(p) for p in paths]}")
    return scores


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", type=Path, nargs="+", help="bench/learning.py result files")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()

    import vidra
    from vidra.evals.metrics import paired_from_maps

    scores = pooled_rows(args.files)
    each: dict[str, Any] = {}
    for label, got in scores.items():
        if label != REF:
            d = paired_from_maps(got, scores[REF])
            each[label] = {"n": d.n, "diff": round(d.diff, 4),
                           "ci95": [round(x, 4) for x in d.ci95]}  # fmt: skip
    report = header("learning-seed-means", vidra=vidra.__version__)
    report["files"] = [str(p) for p in args.files]
    report["minus_SFT"] = each
    report["mean_of_seeds_minus_SFT"] = seed_means(scores, REF)
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
