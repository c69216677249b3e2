"""Export training datasets in the shapes TRL and verl users load.

Rows: GRPO/SFT ``{prompt, completion, role, reward, advantage, episode_id, step_id, frames,
token_ids, old_logprobs}``; DPO adds ``chosen``/``rejected`` token ids. ``parquet`` writes
one file per role; ``hf`` writes a `datasets.DatasetDict` (one split per role) with
``save_to_disk``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from vidra.errors import BackendUnavailable, InvalidInput
from vidra.rl.datasets import Dataset

__all__ = ["export_dataset"]


def _rows(ds: Dataset, role: str) -> list[dict[str, Any]]:
    rows = []
    for s in ds.samples:
        if s.role != role:
            continue
        d = asdict(s)
        row = {
            "prompt": d["prompt"],
            "completion_token_ids": d["token_ids"],
            "role": role,
            "reward": d["reward"],
            "advantage": d["advantage"],
            "episode_id": d["episode_id"],
            "step_id": d["step_id"],
            "frames": [f"{v}:{i}" for v, i in d["frames"]],
            "old_logprobs": d["old_logprobs"],
            "algorithm": ds.algorithm,
        }
        if ds.algorithm == "dpo":
            row["chosen_token_ids"] = d["token_ids"]
            row["rejected_token_ids"] = d["rejected_token_ids"]
        rows.append(row)
    return rows


def export_dataset(ds: Dataset, out: str | Path, fmt: str = "parquet") -> list[Path]:
    """Write ``ds`` to ``out`` as ``parquet`` or ``hf``; returns the files/directories written."""
    if not ds.samples:
        raise InvalidInput(ds.empty_reason or "the dataset is empty")
    roles = sorted({s.role for s in ds.samples})
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        written = []
        for role in roles:
            path = root / f"{ds.algorithm}-{role}.parquet"
            pq.write_table(pa.Table.from_pylist(_rows(ds, role)), path)
            written.append(path)
        return written
    if fmt == "hf":
        try:
            import datasets
        except ImportError as exc:
            raise BackendUnavailable("hf datasets", "train", str(exc)) from exc
        dd = datasets.DatasetDict({r: datasets.Dataset.from_list(_rows(ds, r)) for r in roles})
        path = root / f"{ds.algorithm}-hf"
        dd.save_to_disk(str(path))
        return [path]
    raise InvalidInput(f"unknown export format {fmt!r}; use parquet or hf")
