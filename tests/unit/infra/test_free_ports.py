"""infra/scripts/free_ports.py: ports for servers started a moment later, picked where no
outgoing connection can take them first (below the kernel's ephemeral range)."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from infra.scripts import free_ports as fp


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.2", port))
        except OSError:
            return False
    return True


def test_ports_are_distinct_free_and_below_the_ephemeral_range() -> None:
    low = fp._ephemeral_low()
    ports = fp.free_ports(40)
    assert len(set(ports)) == 40
    assert all(fp.LOW <= p < low for p in ports), (low, ports)  # not Ray's worker ports either
    assert all(_bindable(p) for p in ports)


class _Scripted(random.Random):
    """Candidates in a given order."""

    def __init__(self, candidates: list[int]) -> None:
        super().__init__()
        self.candidates = iter(candidates)

    def randrange(self, *_: object) -> int:  # type: ignore[override]
        return next(self.candidates)


def test_a_port_in_use_is_never_picked() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))  # on one address only: a server on 0.0.0.0 would still fail
        held.listen()
        taken = held.getsockname()[1]
        a, b = fp.free_ports(2)
        assert fp.free_ports(1, _Scripted([taken, taken, a])) == [a]
        assert fp.free_ports(2, _Scripted([a, a, taken, b])) == [a, b]  # no port twice


def test_a_tiny_ephemeral_range_falls_back_to_the_kernels_pick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    narrow = tmp_path / "ip_local_port_range"
    narrow.write_text("20500\t60999\n")  # under 1000 ports left below it
    monkeypatch.setattr(fp, "RANGE_FILE", narrow)
    ports = fp.free_ports(3)
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert len(set(ports)) == 3 and all(low <= p <= high for p in ports)  # bind(0)'s range


def test_the_script_prints_n_ports_on_one_line() -> None:
    script = Path(fp.__file__)
    out = subprocess.run([sys.executable, str(script), "5"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert len(set(map(int, out.stdout.split()))) == 5 and out.stdout.count("\n") == 1
