"""What every benchmark here needs besides its own workload: the machine it ran on, a
clean database, processes read from /proc, percentiles, and PASS/FAIL.

Kept apart so that the figures of different benchmarks are computed the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import http.client
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

HOST = "127.0.0.1"  # benchmarks send traffic to loopback only
DEPLOYED_WORKER = "sync"  # the gunicorn worker class README's "Deployment" runs


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def production_environ(instance: Path, database_url: str, **extra: str) -> dict[str, str]:
    """Guichet's environment for a benchmark server: production mode with fresh keys, the
    benchmark's own database and instance folder, warnings only; ``extra`` adds or
    overrides variables."""
    from ticketing.crypto.keys import key_environ  # the benchmark put the project on sys.path

    return {
        **key_environ(),
        "TICKETING_ENV": "production",
        "TICKETING_DATABASE_URL": database_url,
        "TICKETING_INSTANCE_PATH": str(instance),
        "TICKETING_LOG_LEVEL": "WARNING",
        "TICKETING_BASE_URL": "http://127.0.0.1",
        "TICKETING_ALLOW_DEMO_PAYMENTS": "true",  # a test instance: nobody pays
        **extra,
    }


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


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int]) -> float:
    """User and system CPU time the processes have used so far (gone ones count 0)."""
    total = 0
    for pid in pids:
        fields = stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


def machine_busy() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(values[:8])
    return total - values[3] - values[4], total


def postgres_backends(server_url: str, database: str) -> list[int]:
    """Pids of the server processes connected to ``database`` (a benchmark's workers)."""
    engine = sa.create_engine(f"{server_url}/postgres")
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"),
                {"db": database},
            )
            return [row.pid for row in rows]
    finally:
        engine.dispose()


def children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            if fields and int(fields[1]) == parent:
                found.append(int(entry.name))
    return sorted(found)


def free_port(host: str = HOST) -> int:
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


class RunBroken(RuntimeError):
    """The run could not measure anything meaningful (as opposed to a missed target)."""


def is_alive(pid: int, marker: str) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def die_with_parent() -> None:
    """In the child before exec: if the benchmark is killed outright, gunicorn gets SIGTERM."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class GunicornServer:
    """One gunicorn under test: started in its own session, stopped with every worker it had."""

    name: str
    app_spec: str
    chdir: Path
    environ: dict[str, str]
    log_path: Path
    gunicorn_args: list[str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    workers: list[int] = field(default_factory=list)

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            *self.gunicorn_args,
            "-b",
            f"{HOST}:{self.port}",
            "--chdir",
            str(self.chdir),
            self.app_spec,
        ]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=self.chdir,
            env={**os.environ, **self.environ},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop it ourselves
            preexec_fn=die_with_parent,  # safe: the benchmark runs no threads
        )
        log.close()

    def wait_ready(self, expected_workers: int = 1, timeout: float = 30.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RunBroken(f"{self.name}: gunicorn exited with {self.process.returncode}\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection = http.client.HTTPConnection(HOST, self.port, timeout=2)
                try:
                    connection.request("GET", "/healthz")
                    if connection.getresponse().status == 200:
                        self.workers = children_of(self.process.pid)
                        if len(self.workers) >= expected_workers:
                            return
                finally:
                    connection.close()
            time.sleep(0.05)
        raise RunBroken(f"{self.name}: no healthy answer on /healthz within {timeout:.0f} s\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is None:
            return
        known = set(self.workers) | set(children_of(self.process.pid))
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for pid in known:  # workers outliving their master would keep the port and memory
            if is_alive(pid, "gunicorn"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.process = None


# --------------------------------------------------------------------------- load client


@dataclass
class Answer:
    """One request as a client saw it; status 0 means no HTTP answer (connection error, timeout)."""

    client: int
    status: int
    started: float
    finished: float
    body: bytes = b""

    @property
    def latency(self) -> float:
        return self.finished - self.started


@dataclass
class Load:
    answers: list[Answer]
    wall: float
    client_cpu: float


def http_request(method: str, path: str, port: int, body: bytes = b"", headers: Sequence[str] = ()) -> bytes:
    """A whole HTTP/1.1 request, ready to send (a JSON body when ``body`` is given)."""
    head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Accept: application/json", *headers]
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


def _parse_response(data: bytes) -> tuple[int, bool, bytes] | None:
    """(status, keep-alive, body) once ``data`` holds a whole answer with a Content-Length, else None."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    lines = data[:head_end].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip().lower()
    length = int(headers.get("content-length", "0"))
    body = data[head_end + 4 : head_end + 4 + length]
    if len(body) < length:
        return None
    return status, headers.get("connection") != "close", body


async def _exchange(loop: asyncio.AbstractEventLoop, sock: socket.socket, request: bytes) -> tuple[int, bool, bytes]:
    await loop.sock_sendall(sock, request)
    data = b""
    while True:
        chunk = await loop.sock_recv(sock, 65536)
        if not chunk:
            raise ConnectionError("the server closed the connection before answering")
        data += chunk
        answer = _parse_response(data)
        if answer is not None:
            return answer


async def _client(index: int, port: int, requests: Iterable[bytes], answers: list[Answer]) -> None:
    """Sends its requests one after another, on one connection while the server keeps it
    open. Plain sockets on the event loop rather than asyncio streams: the client shares
    the machine with the server, so its CPU per request is kept small."""
    loop = asyncio.get_running_loop()
    sock: socket.socket | None = None
    for request in requests:
        started = time.perf_counter()
        try:
            if sock is None:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setblocking(False)
                await loop.sock_connect(sock, (HOST, port))
            status, keep_alive, body = await _exchange(loop, sock, request)
        except (OSError, ValueError) as error:
            answers.append(Answer(index, 0, started, time.perf_counter(), type(error).__name__.encode()))
            if sock is not None:
                sock.close()
            sock = None
            continue
        answers.append(Answer(index, status, started, time.perf_counter(), body))
        if not keep_alive:
            sock.close()
            sock = None
    if sock is not None:
        sock.close()


def fire(port: int, clients: Sequence[Iterable[bytes]], timeout: float = 300.0) -> Load:
    """Run the clients at once, each sending its own requests in order, and wait for all
    (at most ``timeout`` seconds for the whole run: a hung server breaks it).

    Give every client its own list for fixed queues (the doors of a venue); give them all
    one shared iterator for a common queue that whichever client is free takes from.
    Answers must carry a Content-Length (Guichet's and nginx's do).
    """

    async def run() -> list[Answer]:
        answers: list[Answer] = []
        clients_done = asyncio.gather(*(_client(i, port, requests, answers) for i, requests in enumerate(clients)))
        await asyncio.wait_for(clients_done, timeout)
        return answers

    cpu_before = time.process_time()
    started = time.perf_counter()
    answers = asyncio.run(run())
    return Load(answers, time.perf_counter() - started, time.process_time() - cpu_before)
