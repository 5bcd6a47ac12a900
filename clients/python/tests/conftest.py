"""Starts the project's test server (the engine and the gRPC service on a tiny random-weight model)
for the live tests, and stops it when they end."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from mlxserve import Client

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVER_COMMAND = ["node", "--import", "tsx", "test/helpers/test-server.ts"]
# Loading the tiny model takes about a second; the rest is Node and the engine process starting,
# which can be slow on a busy machine.
STARTUP_SECONDS = 180.0
STOP_SECONDS = 20.0


@dataclass
class LiveServer:
    target: str
    model: str


def _die_with_parent() -> None:
    """Runs in the child before exec: on Linux, have the kernel stop the server if the test
    process dies without cleaning up (e.g. killed), so it never outlives the tests."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _read_ready_line(stdout: IO[bytes], process: subprocess.Popen[bytes], deadline: float) -> dict[str, object]:
    """The server's one JSON line ({"port": N, "model": "..."}), printed once it serves."""
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while True:
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                try:
                    ready = json.loads(line)
                except ValueError:
                    continue
                if isinstance(ready, dict) and "port" in ready:
                    return ready
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the test server did not get ready in {STARTUP_SECONDS:.0f} s")
            if selector.select(remaining):
                chunk = os.read(stdout.fileno(), 65536)
                if not chunk:
                    raise RuntimeError(f"the test server exited before it was ready (exit code {process.wait()})")
                buffer += chunk


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        # The server started its own process group (start_new_session): kill all of it.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            SERVER_COMMAND,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        assert process.stdout is not None
        try:
            ready = _read_ready_line(process.stdout, process, time.monotonic() + STARTUP_SECONDS)
            yield LiveServer(target=f"127.0.0.1:{ready['port']}", model=str(ready["model"]))
        except BaseException:
            _print_log_tail(log)
            raise
        finally:
            _stop(process)
            process.stdout.close()
        if request.session.testsfailed:
            _print_log_tail(log)


def _print_log_tail(log: IO[bytes], limit: int = 4000) -> None:
    log.seek(0)
    text = log.read().decode(errors="replace")
    print(f"--- test server log (last {limit} characters) ---\n{text[-limit:]}", file=sys.__stderr__)


@pytest.fixture()
def client(server: LiveServer) -> Iterator[Client]:
    with Client(server.target, timeout=60) as client:
        yield client
