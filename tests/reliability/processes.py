"""Real processes for tests: django-q2 clusters, a web server, and faults we control.

Shared by the worker tests (tests/ai_engine/test_workers.py) and the reliability suite. The
test process owns the PostgreSQL test database; subprocesses reach it through `worker_env`.
Faults are injected only into things started here — a throwaway Redis on a free port, a TCP
proxy in front of PostgreSQL, a server that never answers — never the machine's shared servers.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from django.db import connection

from tests.conftest import REPO_ROOT, REQUIRE_SERVICES

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


# --------------------------------------------------------------------------- requirements


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        if REQUIRE_SERVICES:
            pytest.fail("worker tests must run on PostgreSQL in CI")
        pytest.skip("worker processes share the database only on PostgreSQL")


def require_redis(url: str = REDIS_URL) -> None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis at {url} is required in CI")
        pytest.skip("Redis is not running")


def require_program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if REQUIRE_SERVICES:
            pytest.fail(f"{name} is required in CI")
        pytest.skip(f"{name} is not installed")
    return path


# --------------------------------------------------------------------------- subprocesses


def database_url(*, host: str | None = None, port: int | None = None) -> str:
    """The test database's URL, optionally through another host/port (a proxy)."""
    db = connection.settings_dict
    host = host or db["HOST"] or "127.0.0.1"
    port = port or int(db["PORT"] or 5432)
    # No TLS, so a proxy can see which statement is on the wire.
    return f"postgres://{db['USER']}@{host}:{port}/{db['NAME']}?sslmode=disable"


def worker_env(media_root: Path, **extra: str) -> dict[str, str]:
    from django.conf import settings

    base = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL"}}
    return {
        **base,
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DATABASE_URL": database_url(),
        "DB_CONN_MAX_AGE": "0",
        "MEDIA_ROOT": str(media_root),
        "AI_DEVICE": "cpu",
        # The same key as the test process, so tokens and sessions made here are valid there.
        "SECRET_KEY": settings.SECRET_KEY,
        **extra,
    }


def start_cluster(
    env: dict[str, str], name: str = "ai", log: Path | None = None
) -> subprocess.Popen:
    output = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=REPO_ROOT,
        env={**env, "Q_CLUSTER_NAME": name},
        stdout=output,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        start_new_session=True,
    )


def start_web(env: dict[str, str], port: int, log: Path | None = None) -> subprocess.Popen:
    """gunicorn with one sync worker on 127.0.0.1:`port`, DEBUG off (production error pages)."""
    output = log.open("ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "clinic.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--timeout",
            "60",
        ],
        cwd=REPO_ROOT,
        env={"DEBUG": "0", **env},
        stdout=output,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        start_new_session=True,
    )
    if not wait_for(lambda: port_open(port) or process.poll() is not None, 90, 0.2):
        stop(process, signal.SIGKILL)
        raise AssertionError("the web server did not start within 90 s")
    assert process.poll() is None, "the web server exited at start"
    return process


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Stop it as systemd's KillMode=mixed does: `sig` to the main process (SIGKILL to the
    whole group), then SIGKILL to the group if it has not gone after `timeout` seconds.

    A SIGTERM must reach only a qcluster's main process: sent to its children too, the sentinel
    dies inside `stop_event.wait()` and the main process then blocks for ever in
    `stop_event.set()` (see deploy/systemd/ophai-worker.service).
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            if sig == signal.SIGKILL:
                os.killpg(process.pid, sig)
            else:
                os.kill(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # A cluster's children outlive a SIGKILLed parent for a moment; leave none behind.
    for pid in group_pids(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def run_python(env: dict[str, str], code: str, timeout: float = 120) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


# --------------------------------------------------------------------------- /proc helpers


def group_pids(pgid: int) -> list[int]:
    """Live processes of a process group (children of a cluster included), from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after the ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def busiest_worker(cluster: subprocess.Popen) -> int:
    """The cluster's worker process: the child that loaded torch, i.e. the largest RSS."""
    children = [pid for pid in group_pids(cluster.pid) if pid != cluster.pid]
    assert children, "the cluster has no child processes"
    return max(children, key=rss_kb)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --------------------------------------------------------------------------- fault doubles


class RedisServer:
    """A throwaway redis-server on a free port, no persistence; stop() and start() it at will."""

    def __init__(self, workdir: Path) -> None:
        self.binary = require_program("redis-server")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--daemonize", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert wait_for(lambda: self.ping(), 20, 0.1), "redis-server did not start"

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, signal.SIGKILL)
            self.process = None

    def ping(self) -> bool:
        try:
            return redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
        except redis.exceptions.ConnectionError:
            return False


class TcpProxy:
    """A TCP proxy we can cut: between a web process and PostgreSQL, say.

    `cut()` drops every connection and refuses new ones until `restore()`. `cut_when(marker)`
    drops them the moment a client sends bytes containing `marker` (e.g. the INSERT of an audit
    row), before those bytes reach the server: the fault lands in the middle of a transaction.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._cut = False
        self._marker: bytes | None = None
        self.cuts = 0
        self._closing = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            self._drop_all()

    def cut_when(self, marker: bytes) -> None:
        with self._lock:
            self._marker = marker

    def restore(self) -> None:
        with self._lock:
            self._cut = False
            self._marker = None

    def close(self) -> None:
        self._closing = True
        self._thread.join(timeout=5)
        self.listener.close()
        with self._lock:
            self._drop_all()

    def _drop_all(self) -> None:
        for pair in self._pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self._pairs.clear()

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                if self._cut:
                    client.close()
                    continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, server)
        selector.register(server, selectors.EVENT_READ, client)
        try:
            while not self._closing and client.fileno() != -1 and server.fileno() != -1:
                for key, _ in selector.select(timeout=0.5):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    if key.fileobj is client and self._marker and self._marker in data:
                        with self._lock:
                            self._cut = True
                            self._marker = None
                            self.cuts += 1
                            self._drop_all()
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            return  # dropped by cut() while we were reading
        finally:
            selector.close()
            for sock in (client, server):
                sock.close()


class HangingServer:
    """Accepts TCP connections and never answers: an LLM endpoint that hangs."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._closing = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._held.append(client)  # read nothing, answer nothing

    def close(self) -> None:
        self._closing = True
        self._thread.join(timeout=5)
        self.listener.close()
        for sock in self._held:
            sock.close()
