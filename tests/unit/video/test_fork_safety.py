"""A process that decoded video can still fork: Ray starts its local cluster with
``subprocess.Popen(..., preexec_fn=...)``, whose child frees every object reachable only from
other threads' state; a frame holding a threaded PyAV scaler then hangs the child, and the
parent (vidra starting Ray for a retraining cycle) waits for it forever."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import subprocess, threading
    import av, numpy as np
    from vidra.video.pyav_engine import to_rgb

    frame = av.VideoFrame.from_ndarray(np.zeros((90, 160, 3), np.uint8), format="rgb24")
    assert to_rgb(frame, (80, 44)).shape == (44, 80, 3)
    held = threading.local()
    held.frame = frame  # reachable only from the main thread's state, as in a traceback
    del frame

    def spawn():
        subprocess.run(["true"], preexec_fn=lambda: None, check=True)

    t = threading.Thread(target=spawn, daemon=True)
    t.start()
    t.join(30)
    print("hung" if t.is_alive() else "forked", flush=True)
    import os
    os._exit(0)
    """
)


def test_a_process_holding_a_converted_frame_forks_with_a_preexec_fn(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with out.open("w") as f:  # a file, not a pipe: a hung child would hold a pipe open
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=f, stderr=f,
                                start_new_session=True)  # fmt: skip
        try:
            rc = proc.wait(timeout=120)
        finally:
            with contextlib.suppress(ProcessLookupError):  # a hung child, if any
                os.killpg(proc.pid, signal.SIGKILL)
    assert rc == 0, out.read_text()[-2000:]
    assert out.read_text().strip().splitlines()[-1] == "forked"
