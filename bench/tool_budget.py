"""The SFT agents on `bench/learning.py`'s held-out benchmark with the selector's tool calls per
round capped (``agents.max_tool_calls``), paired against the SFT row of the same run
directory: what a smaller tool budget costs in accuracy, and saves in tool calls and frames.
The SFT row is the one `bench/learning.py` recorded in ``DIR/main`` (reused, not re-run); the
capped row is answered in the same store, so a second run reuses it too.

Usage: ``python bench/tool_budget.py --home DIR [--max-tool-calls 1] [--out FILE]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from learning import Bench, _settings
from report import emit, eval_row, header, paired_rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True, help="bench/learning.py's work dir")
    ap.add_argument("--max-tool-calls", type=int, default=1, metavar="N")
    ap.add_argument("--short-worlds", type=int, default=34)  # as bench/learning.py
    ap.add_argument("--long-worlds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    if args.max_tool_calls < 1:
        raise SystemExit(f"--max-tool-calls {args.max_tool_calls}: a round needs >= 1 call")
    if not (args.home / "main" / "vidra.db").is_file():
        raise SystemExit(f"{args.home}/main holds no store: run bench/learning.py first")

    import torch
    import transformers

    import vidra

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    bench = Bench(args.home / "videos", args.short_worlds, args.long_worlds)
    s = _settings(args.home / "main", 40)
    capped = s.model_copy(deep=True)
    capped.agents.max_tool_calls = args.max_tool_calls
    row = f"SFT, max_tool_calls={args.max_tool_calls}"
    reports: dict[str, Any] = {"SFT": bench.run(s), row: bench.run(capped)}
    rows = {name: eval_row(rep) for name, rep in reports.items()}
    paired_rows(rows, reports, "SFT")
    report = header("tool_budget", vidra=vidra.__version__, torch=torch.__version__,
                    transformers=transformers.__version__)  # fmt: skip
    same = {q["qid"]: q.get("correct") for q in reports["SFT"]["per_question"]}
    report.update({
        "home": str(args.home), "max_tool_calls": {"SFT": s.agents.max_tool_calls,
                                                   row: args.max_tool_calls},
        "rows": rows,
        "same_correctness": sum(1 for q in reports[row]["per_question"]
                                if q["qid"] in same and q.get("correct") == same[q["qid"]]),
        "seconds": round(time.perf_counter() - t0),
    })  # fmt: skip
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
