"""gunicorn config hooks that profile each worker with cProfile.

Used by ``flash_sale.py --profile DIR``: every worker writes ``DIR/worker-<pid>.prof``
when it exits. The clock is the worker's CPU time by default (``BENCH_PROFILE_CLOCK=cpu``):
on a small shared machine, CPU is what runs out, and a wall clock would charge a
function for the time the kernel gave the CPU to someone else. ``BENCH_PROFILE_CLOCK=wall``
shows time spent waiting on PostgreSQL instead (and idle time in ``accept``, which is not
part of the request path).
"""

from __future__ import annotations

import cProfile
import os
import time
from pathlib import Path
from typing import Any

PROFILE_DIR_VARIABLE = "BENCH_PROFILE_DIR"
CLOCK_VARIABLE = "BENCH_PROFILE_CLOCK"

_profiles: dict[int, cProfile.Profile] = {}


def post_fork(server: Any, worker: Any) -> None:
    wall = os.environ.get(CLOCK_VARIABLE, "cpu") == "wall"
    profile = cProfile.Profile() if wall else cProfile.Profile(time.process_time)
    _profiles[os.getpid()] = profile
    profile.enable()


def worker_exit(server: Any, worker: Any) -> None:
    profile = _profiles.pop(os.getpid(), None)
    if profile is None:
        return
    profile.disable()
    profile.dump_stats(str(Path(os.environ[PROFILE_DIR_VARIABLE]) / f"worker-{os.getpid()}.prof"))
