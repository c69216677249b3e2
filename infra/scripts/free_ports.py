"""N distinct TCP ports that are free now, for servers started a moment later.

    python infra/scripts/free_ports.py N      prints them on one line

A port is picked and its server binds it only later, so another process can take it in
between. `bind(0)` hands out ports from the kernel's ephemeral range, the same range every
outgoing connection on the machine draws its local port from: on a busy machine (a test suite
opening connections to PostgreSQL, MLflow and Ray) one of them took a port picked for Ray, and
Ray's raylet died with "Failed to start the grpc server ... Address already in use". So the
ports come from below the ephemeral range (and above Ray's worker ports, 10002-19999), where
only explicit binds land, and each is checked free on every address. Falls back to `bind(0)`
where that range is too small. Stdlib only: the shell scripts run it with any Python.
"""

from __future__ import annotations

import random
import socket
import sys
from pathlib import Path

LOW = 20000  # above Ray's default worker ports (10002-19999)
RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_low() -> int:
    try:
        return int(RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _is_free(port: int) -> bool:
    # on all addresses: a server on 127.0.0.2 or 0.0.0.0 must not find the port taken
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _kernel_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int, rng: random.Random | None = None) -> list[int]:
    """`n` distinct ports, free on every local address when this returns."""
    rng = rng or random.SystemRandom()
    high = _ephemeral_low()
    ports: list[int] = []
    if high - LOW >= 1000:
        for _ in range(50 * n):
            if len(ports) == n:
                break
            port = rng.randrange(LOW, high)
            if port not in ports and _is_free(port):
                ports.append(port)
    while len(ports) < n:  # a tiny or unreadable range: the kernel's pick
        port = _kernel_port()
        if port not in ports:
            ports.append(port)
    return ports


def free_port() -> int:
    return free_ports(1)[0]


if __name__ == "__main__":
    print(" ".join(map(str, free_ports(int(sys.argv[1]) if len(sys.argv) > 1 else 1))))
