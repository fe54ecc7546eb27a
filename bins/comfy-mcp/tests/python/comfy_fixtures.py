"""The processes the Python suites start, in one place: comfy-sim, the
comfy-mcp binary serving Streamable HTTP, and a redis-server; and the one
bounded wait the tests share. This suite's conftest.py and the evals'
import it (the evals by path), as the Rust tests share comfy-test-support.

Every start waits for the line the program prints once it is ready, never
a sleep and a retry, and gives up after a deadline saying what it waited
for."""

import os
import queue
import shutil
import socket
import subprocess
import threading
import time

# How long a program gets to say it is ready (debug builds on a busy machine).
START_LIMIT = 60.0


def spawn_until(argv, marker, *, env=None, output="stderr", limit=START_LIMIT):
    """Starts `argv` and waits for a line of its `output` ("stderr" or
    "stdout") containing `marker`; returns the process and the text after
    the marker. The output is read to its end on a thread, so the child
    never blocks on a full pipe."""
    pipe = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, output: subprocess.PIPE}
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, text=True, **pipe)
    stream = proc.stdout if output == "stdout" else proc.stderr
    found = queue.Queue(maxsize=1)

    def read():
        told = False
        for line in stream:
            if not told and marker in line:
                found.put(line.split(marker, 1)[1].strip())
                told = True
        if not told:
            found.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        rest = found.get(timeout=limit)
    except queue.Empty:
        stop(proc)
        raise AssertionError(f"{argv[0]} printed no {marker!r} line within {limit} s") from None
    if rest is None:
        stop(proc)
        raise AssertionError(f"{argv[0]} exited before printing {marker!r} (exit {proc.wait()})")
    return proc, rest


def stop(proc):
    """Ends a process started here and waits for it."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_sim(sim_bin, data, *args):
    """A comfy-sim on a free port with `args`; returns the process and its URL."""
    proc, rest = spawn_until([sim_bin, "--port", "0", "--data-dir", str(data), *args], " listening on ")
    return proc, rest.split()[0]


def start_http_server(mcp_bin, env):
    """The comfy-mcp binary whose config (under `env["HOME"]`) enables the
    remote transport on port 0; returns the process and its /mcp URL."""
    proc, rest = spawn_until([mcp_bin], "Streamable HTTP at ", env=env)
    return proc, rest.split()[0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis():
    """A redis-server on a free loopback port, once it accepts connections;
    returns the process and its redis:// URL, or None when it is not
    installed (outside CI; in CI that fails)."""
    if shutil.which("redis-server") is None:
        assert not os.environ.get("CI"), "redis-server is needed in CI"
        return None
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc, _ = spawn_until(argv, "Ready to accept connections", output="stdout")
    return proc, f"redis://127.0.0.1:{port}/"


def wait_until(probe, what, limit=20.0, every=0.05):
    """Calls `probe` until it returns something truthy, and returns that;
    fails after `limit` seconds saying what it waited for. For state that
    has no event to wait on (a job's events go to the server that queued
    it, not to the test)."""
    deadline = time.monotonic() + limit
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {limit} s for {what}; last saw {found!r}")
        time.sleep(every)


async def until(probe, what, limit=20.0, every=0.05):
    """`wait_until` for an async `probe`."""
    import anyio

    deadline = time.monotonic() + limit
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {limit} s for {what}; last saw {found!r}")
        await anyio.sleep(every)
