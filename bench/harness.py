"""What every benchmark here needs besides its own workload: the machine it ran on, a
clean database, processes read from /proc, percentiles, and PASS/FAIL.

Kept apart so that the figures of different benchmarks are computed the same way.
"""

from __future__ import annotations

import contextlib
import platform
import socket
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def empty_database(server_url: str, database: str) -> dict[str, str]:
    """Create the benchmark's own database if needed and empty its schema.

    Returns the server settings that change what a benchmark measures (version, and
    whether commits wait for the disk).
    """
    admin = sa.create_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :db"), {"db": database})
            if exists.first() is None:
                connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
            settings = {
                name: str(connection.execute(sa.text(f"SHOW {name}")).scalar_one())
                for name in ("server_version", "fsync", "synchronous_commit")
            }
    finally:
        admin.dispose()
    engine = sa.create_engine(f"{server_url}/{database}")
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    return settings


def stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces), or None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            if fields and int(fields[1]) == parent:
                found.append(int(entry.name))
    return sorted(found)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-int(fraction * 1000) * len(ordered) // 1000))  # ceil(fraction * n)
    return ordered[min(rank, len(ordered)) - 1]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
