"""Run code snippets with torch in a pool of long-lived worker processes.

Importing torch costs seconds, so each worker imports it once and runs many snippets. Every run has a
wall-time, CPU-time and memory limit; a snippet that hangs, exits or crashes its worker costs only
itself: the worker is replaced and the rest of its batch goes on. Results are cached by the hash of
the code (and expression) that ran, so identical snippets run once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from qbank.models import RunLimits

#: Seconds a new worker may take to import torch and say it is ready.
STARTUP_SECONDS = 180.0
#: Snippets sent to a worker in one message: fewer round trips, while a lost worker loses little.
BATCH_SIZE = 16
#: Messages a worker holds at a time, so it starts the next batch without waiting for the parent.
IN_FLIGHT = 2
#: Seconds the parent lets replies gather before reading them.
READ_PAUSE = 0.005
#: Seconds the parent waits past a job's wall-time limit before it stops the worker itself.
WALL_GRACE = 1.0


def _over_wall(job: Job) -> str:
    return f"ran longer than its wall-time limit of {job.limits.wall_seconds:g} s"


@dataclass(frozen=True)
class Job:
    code: str
    expression: str | None = None
    limits: RunLimits = field(default_factory=RunLimits)
    inference_mode: bool = False
    #: The cache key: a hash of what decides the outcome (computed once; jobs are looked up often).
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(self.code.encode())
        digest.update(b"\0" + (self.expression or "").encode() + b"\0" + bytes([self.inference_mode]))
        object.__setattr__(self, "key", digest.hexdigest())


@dataclass(frozen=True)
class RunResult:
    """What happened when a snippet ran. `failure` set means it did not run to a usable end."""

    stdout: str = ""
    error: dict[str, str] | None = None
    value: Any = None
    has_value: bool = False
    seconds: float = 0.0
    failure: str | None = None


class _Worker:
    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.buffer = b""
        self.ended = False  # the last _readline met the end of the worker's output
        self.ready = False

    def spawn(self) -> None:
        """Start the process without waiting: torch's import then overlaps with the caller's work."""
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
        # -P: do not put the current folder on sys.path, so the installed qbank is the one that runs.
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "qbank.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self.workdir,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the CLI, which stops us cleanly
        )
        self.buffer = b""
        self.ended = False
        self.ready = False

    def start(self) -> None:
        """A running worker that has imported torch."""
        if self.process is None or self.process.poll() is not None:
            self.spawn()
        if self.ready:
            return
        line = self._readline(time.monotonic() + STARTUP_SECONDS)
        if line is None or b"ready" not in line:
            status = self.stop()
            raise RuntimeError(f"a worker process could not start ({status}); is torch installed?")
        self.ready = True

    def _readline(self, deadline: float) -> bytes | None:
        """One line from the worker, or None on timeout or end of file (self.process tells which)."""
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            # Replies come every fraction of a millisecond: a short pause lets one read take many of them,
            # instead of waking this process once per reply (the worker never waits: it has work queued).
            time.sleep(READ_PAUSE)
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                self.ended = True
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def stop(self) -> str:
        """Stop the process and say how it ended."""
        process, self.process = self.process, None
        if process is None:
            return "not running"
        if self.ended:  # it closed its output: it is exiting, so wait for its status
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return "stopped"
        code = process.returncode
        if code < 0:
            try:
                return f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def send(self, jobs: list[Job]) -> bool:
        """Queue jobs on the worker (started if need be); False if it is gone (a read will say how)."""
        self.start()
        assert self.process is not None and self.process.stdin is not None
        message = {
            "jobs": [
                {
                    "code": job.code,
                    "expression": job.expression,
                    "cpu_seconds": job.limits.cpu_seconds,
                    "wall_seconds": job.limits.wall_seconds,
                    "memory_mb": job.limits.memory_mb,
                    "inference_mode": job.inference_mode,
                }
                for job in jobs
            ]
        }
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            return False
        return True

    def receive(self, job: Job, started: float) -> RunResult:
        """The result of `job`, the oldest job sent without a reply, which the worker started at `started`.

        A job that passes its wall-time limit (the worker stops most itself; this is the backstop) or ends
        the process fails, and the process is stopped: the jobs sent after it must be sent again.
        """
        line = self._readline(started + job.limits.wall_seconds + WALL_GRACE)
        if line is not None:
            return _result(json.loads(line))
        timed_out = not self.ended
        status = self.stop()
        if timed_out:
            return RunResult(failure=_over_wall(job), seconds=time.monotonic() - started)
        return RunResult(failure=f"the code ended its worker process ({status})", seconds=time.monotonic() - started)


def _result(reply: dict[str, Any]) -> RunResult:
    return RunResult(
        stdout=reply["stdout"],
        error=reply["error"],
        value=reply.get("value"),
        has_value="value" in reply,
        seconds=reply["seconds"],
        failure=reply["failure"],
    )


class WorkerPool:
    """A pool of torch workers with a result cache; use as a context manager."""

    def __init__(self, workers: int | None = None) -> None:
        self.size = max(1, workers or os.cpu_count() or 1)
        self.cache: dict[str, RunResult] = {}
        self.hits = 0
        self.runs = 0
        self._workdir = tempfile.TemporaryDirectory(prefix="qbank-run-")
        self._workers = [_Worker(self._workdir.name) for _ in range(self.size)]
        for worker in self._workers:
            worker.spawn()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        # Workers hold nothing to save: stopping them beats waiting for torch's teardown (half a second each).
        for worker in self._workers:
            worker.stop()
        self._workdir.cleanup()

    def warm(self) -> None:
        """Wait until every worker has imported torch (they start when the pool is made)."""
        threads = [threading.Thread(target=worker.start, daemon=True) for worker in self._workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def run(self, jobs: Iterable[Job], progress: Callable[[int], None] | None = None) -> dict[str, RunResult]:
        """Results for every job, by job key. Jobs already in the cache (or repeated) run once."""
        results: dict[str, RunResult] = {}
        todo: dict[str, Job] = {}
        for job in jobs:
            key = job.key
            if key in self.cache:
                results[key] = self.cache[key]
                self.hits += 1
            elif key in todo:
                self.hits += 1
            else:
                todo[key] = job
        if not todo:
            return results
        batches: queue.SimpleQueue[list[Job]] = queue.SimpleQueue()
        ordered = list(todo.values())
        # Small batches near the end keep both workers busy until the last job.
        size = max(1, min(BATCH_SIZE, len(ordered) // (self.size * 4) or 1))
        for start in range(0, len(ordered), size):
            batches.put(ordered[start : start + size])
        lock = threading.Lock()
        errors: list[BaseException] = []

        def done(job: Job, result: RunResult) -> None:
            with lock:
                self.cache[job.key] = result
                self.runs += 1
                if progress:
                    progress(1)

        def serve(worker: _Worker) -> None:
            try:
                _serve(worker, batches, done)
            except BaseException as exc:  # surfaced in the calling thread below
                errors.append(exc)

        threads = [threading.Thread(target=serve, args=(worker,), daemon=True) for worker in self._workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        for key in todo:
            results[key] = self.cache[key]
        return results


def _serve(worker: _Worker, batches: queue.SimpleQueue[list[Job]], done: Callable[[Job, RunResult], None]) -> None:
    """Run batches from the queue on one worker, keeping IN_FLIGHT of them queued on it, until none are left."""
    backlog: list[Job] = []  # jobs to send again after the worker was replaced
    sent: deque[Job] = deque()  # jobs sent, oldest first, without a reply yet
    messages: deque[int] = deque()  # how many of them each message in flight still holds
    started = time.monotonic()  # when the worker started the oldest job in `sent`
    while True:
        while len(messages) < IN_FLIGHT:
            if backlog:
                batch, backlog = backlog, []
            else:
                try:
                    batch = batches.get_nowait()
                except queue.Empty:
                    break
            if not worker.send(batch):  # it died: a read says how, or, with nothing sent, a new one starts
                backlog = batch
                if not sent:
                    worker.stop()
                break
            if not sent:
                started = time.monotonic()
            sent.extend(batch)
            messages.append(len(batch))
        if not sent:
            if backlog:  # the worker was gone before it got any of them: start a new one
                continue
            return
        job = sent.popleft()
        result = worker.receive(job, started)
        done(job, result)
        started = time.monotonic()
        if worker.process is None:  # stopped: what it still held goes to its replacement
            backlog = [*sent, *backlog]
            sent.clear()
            messages.clear()
            continue
        messages[0] -= 1
        if not messages[0]:
            messages.popleft()
