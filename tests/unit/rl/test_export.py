from __future__ import annotations

from pathlib import Path

import pytest

from vidra.errors import InvalidInput
from vidra.rl.datasets import RewardSpec, build_dpo, build_grpo
from vidra.rl.export import export_dataset
from vidra.storage import TrajectoryStore

from ..storage.helpers import make_episode, make_job


def test_parquet_and_hf_exports(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    store = TrajectoryStore(f"sqlite:///{tmp_path / 'v.db'}")
    job = make_job(store)
    store.record_episodes([make_episode(job, k, accuracy=float(k % 2)) for k in range(4)])
    ds = build_grpo(store, RewardSpec({"accuracy": 1.0}), roles=["reasoner", "critic"])
    files = export_dataset(ds, tmp_path / "out", "parquet")
    assert sorted(f.name for f in files) == ["grpo-critic.parquet", "grpo-reasoner.parquet"]
    table = pq.read_table(files[1])
    assert table.num_rows == 4 and {"prompt", "completion_token_ids", "advantage"} <= set(
        table.column_names
    )
    assert sorted(table.column("advantage").to_pylist()) == pytest.approx([-1, -1, 1, 1], abs=1e-4)
    datasets = pytest.importorskip("datasets")
    [hf_dir] = export_dataset(ds, tmp_path / "out", "hf")
    loaded = datasets.load_from_disk(str(hf_dir))
    assert set(loaded) == {"critic", "reasoner"} and loaded["reasoner"].num_rows == 4
    with pytest.raises(InvalidInput, match="no DPO pairs"):
        export_dataset(build_dpo(store, RewardSpec({"accuracy": 1.0}), margin=5), tmp_path)
    with pytest.raises(InvalidInput, match="unknown export format"):
        export_dataset(ds, tmp_path, "csv")
    store.close()
