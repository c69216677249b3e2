"""Online retraining, synchronous against overlapped (collect the next batch while the current
version trains), on the same work: vidra-tiny, the same iterations, questions and rollouts.
Prints JSON: wall time per cycle and where it went.

On a 2-core machine collection and training share the same cores, so overlap can only hide
the parts of a cycle that wait (Ray Train start-up, MLflow, the gate's I/O); on a cluster,
collection runs on other nodes than training.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _run(overlap: bool, iterations: int, questions: int) -> dict[str, Any]:
    import ray

    from vidra.config import Settings
    from vidra.pipelines.online import online
    from vidra.pipelines.train_tiny import tiny_agent_settings

    with tempfile.TemporaryDirectory() as home:
        s = tiny_agent_settings(Settings(data_dir=Path(home)))
        s.train.eval_questions = 10
        s.train.gate_options = {"worlds": "2", "duration": "120", "per_kind": "1"}
        s.train.min_samples, s.train.promote_ties, s.train.gate_tolerance = 0, True, 1.0
        t0 = time.perf_counter()
        report = online(s, iterations, questions=questions, rollouts=4, seed=3, overlap=overlap)
        wall = time.perf_counter() - t0
        ray.shutdown()
    return {
        "wall_s": round(wall, 1),
        "per_cycle_s": round(wall / iterations, 1),
        "collect_s": [round(x, 1) for x in report.collect_s],
        "train_s": [round(x, 1) for x in report.train_s],
        "samples": [r.samples for r in report.results],
        "promoted": [r.promoted for r in report.results],
    }


def main() -> int:
    from report import emit, header

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import ray
    import torch

    torch.set_num_threads(2)
    sync = _run(False, args.iterations, args.questions)
    overlapped = _run(True, args.iterations, args.questions)
    speedup = round(sync["wall_s"] / overlapped["wall_s"], 2)
    report = {
        **header("online", ray=ray.__version__, torch=torch.__version__),
        "work": f"{args.iterations} cycles x {args.questions} questions x 4 rollouts, vidra-tiny",
        "synchronous": sync,
        "overlapped": overlapped,
        "speedup": speedup,
        "collect_mean_s": round(statistics.mean(sync["collect_s"]), 1),
    }
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
