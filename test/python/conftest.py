"""Starts the whole server (engine, gRPC service, OpenAI adapter) on a tiny model once per test
session, through launch-server.ts, and hands the tests an OpenAI client pointed at it."""

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest
from openai import OpenAI

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def server():
    proc = subprocess.Popen(
        ["node", "--import", "tsx", str(REPO / "test/python/launch-server.ts"), "--tiny"],
        cwd=REPO,
        stdin=subprocess.PIPE,  # the server stops when this pipe closes
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "2")},
    )
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=30)
        pytest.fail(f"the server did not start (exit code {proc.returncode})")
    info = json.loads(line)
    yield info
    proc.stdin.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def client(server):
    return OpenAI(base_url=server["base_url"], api_key="unused", max_retries=0)


@pytest.fixture(scope="session")
def model(server):
    return server["model"]


@pytest.fixture(scope="session")
def health(server):
    """Reads GET /health: the engine's state and its running and waiting requests."""
    url = server["base_url"].removesuffix("/v1") + "/health"

    def read():
        with urllib.request.urlopen(url) as res:
            return json.load(res)

    return read
