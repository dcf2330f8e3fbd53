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
import secrets
import select
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from qbank.models import RunLimits
from qbank.sandbox import Launcher, launcher
from qbank.worker import over_wall_time

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
#: The environment variable that marks every process a worker started (see `Worker.spawn`).
MARK = "QBANK_WORKER_MARK"


def end_marked(mark: str) -> int:
    """Kill every process of this user whose environment holds `mark` (Linux's /proc); how many were found."""
    if not mark:
        return 0
    needle = mark.encode() + b"\0"
    ended = 0
    for _ in range(10):  # a process may start another as it is ended: look again
        found = []
        try:
            pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
        except OSError:
            break
        for pid in pids:
            if pid == os.getpid():
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as environ:
                    if needle in environ.read() + b"\0":
                        found.append(pid)
            except OSError:  # another user's process, or one that has ended
                continue
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        ended += len(found)
        time.sleep(0.01)
    return ended


@dataclass(frozen=True)
class Job:
    code: str
    expression: str | None = None
    limits: RunLimits = field(default_factory=lambda: RunLimits())
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
    def __init__(self, workdir: str, launcher: Launcher) -> None:
        self.mark = ""  # set when the process starts
        self.workdir = workdir
        self.launcher = launcher
        self.process: subprocess.Popen[bytes] | None = None
        self.buffer = b""
        self.ended = False  # the last _readline met the end of the worker's output
        self.ready = False
        self.retired = False  # its pool is closed: it must not start again

    def spawn(self) -> None:
        """Start the process without waiting: torch's import then overlaps with the caller's work."""
        if self.retired:
            raise RuntimeError("the worker pool is closed")
        # Every process the worker starts inherits this mark: when the worker has to be killed, the processes its
        # snippet left behind (daemons in sessions of their own, which a kill of its group does not reach) are found
        # by it and ended too.
        self.mark = f"{MARK}={secrets.token_hex(8)}"
        launch = self.launcher.launch(self.workdir, {MARK: self.mark.partition("=")[2]})
        try:
            self.process = subprocess.Popen(
                launch.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                cwd=launch.cwd,
                env=launch.env,
                pass_fds=launch.pass_fds,
                start_new_session=True,  # a Ctrl-C in the terminal reaches the CLI, which stops us cleanly
            )
        finally:
            for fd in launch.pass_fds:
                os.close(fd)
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
            end_marked(self.mark)
            return "stopped"
        code = process.returncode
        said = self.launcher.ended(code)
        if said:
            end_marked(self.mark)
            return said
        if code < 0:  # killed (by us from another thread, or by the system): its snippet's leftovers go too
            end_marked(self.mark)
            try:
                return f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def interrupt(self) -> None:
        """End the process now, from another thread; the thread reading its replies sees it end."""
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

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
            try:
                return _result(json.loads(line))
            except (ValueError, KeyError, TypeError, AttributeError):
                # The snippet wrote into the worker's reply channel: this job's reply is lost, and the stream
                # can no longer be trusted, so the worker is replaced and the jobs after this one run again.
                self.stop()
                return RunResult(
                    failure="the code wrote into the channel qbank reads results from",
                    seconds=time.monotonic() - started,
                )
        timed_out = not self.ended
        status = self.stop()
        if timed_out:
            return RunResult(failure=over_wall_time(job.limits.wall_seconds), seconds=time.monotonic() - started)
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


class Store(Protocol):
    """Results kept beyond one pool (`qbank.store.OutcomeStore`)."""

    def get(self, job_key: str) -> RunResult | None: ...

    def put(self, job_key: str, result: RunResult) -> None: ...

    def close(self) -> None: ...


class WorkerPool:
    """A pool of torch workers with a result cache; use as a context manager.

    Workers start at the first job that is not cached (then at once, so torch's import overlaps with the caller's
    work); with a `store` whose results cover every job, none starts at all.
    """

    def __init__(
        self,
        workers: int | None = None,
        store: Store | None = None,
        *,
        sandbox: bool = True,
        launch: Launcher | None = None,
    ) -> None:
        # More workers than cores only compete for them, and each costs a torch import and its memory.
        self.size = max(1, min(workers or os.cpu_count() or 1, os.cpu_count() or 1))
        self.cache: dict[str, RunResult] = {}
        self.store = store
        self.launcher = launch or launcher(sandbox)
        self.hits = 0
        self.runs = 0
        self._workdir = tempfile.TemporaryDirectory(prefix="qbank-run-")
        self._workers = [_Worker(self._workdir.name, self.launcher) for _ in range(self.size)]
        self._spawned = False

    def spawn(self) -> None:
        """Start the workers without waiting for them (once)."""
        if self._spawned:
            return
        self._spawned = True
        for worker in self._workers:
            if worker.process is None:
                worker.spawn()

    def known(self, key: str) -> bool:
        """Whether the result of the job with this key is cached here, or in the store (then it is brought in)."""
        if key in self.cache:
            return True
        if self.store is not None:
            result = self.store.get(self.stored_key(key))
            if result is not None:
                self.cache[key] = result
                return True
        return False

    def stored_key(self, key: str) -> str:
        """A job's key in the store: outcomes from workers started one way are not served to workers started another
        (a snippet that read a file unsandboxed would hand its content to a sandboxed run)."""
        return f"{self.launcher.identity}\0{key}"

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        # Workers hold nothing to save: stopping them beats waiting for torch's teardown (half a second each).
        for worker in self._workers:
            worker.retired = True
            worker.stop()
        self._workdir.cleanup()
        if self.store is not None:
            self.store.close()

    def warm(self) -> None:
        """Wait until every worker has imported torch."""
        self.spawn()
        threads = [threading.Thread(target=worker.start, daemon=True) for worker in self._workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def session(self, progress: Callable[[int], None] | None = None) -> Session:
        """Start running jobs that are still being made (see Session); `progress(1)` is called per job run."""
        return Session(self, progress)

    def run(self, jobs: Iterable[Job], progress: Callable[[int], None] | None = None) -> dict[str, RunResult]:
        """Results for every job, by job key. Jobs already in the cache (or repeated) run once."""
        with self.session(progress) as session:
            keys = [session.submit(job) for job in jobs]
            return session.results(keys)


class _Feed:
    """Jobs waiting for a worker, handed out in batches, while the caller may still be adding to them."""

    def __init__(self, workers: int) -> None:
        self._jobs: deque[Job] = deque()
        self._open = True
        self._workers = workers
        self._changed = threading.Condition()

    def put(self, job: Job) -> None:
        with self._changed:
            self._jobs.append(job)
            if len(self._jobs) >= BATCH_SIZE:
                self._changed.notify()

    def close(self, *, drop: bool = False) -> None:
        """No more jobs will come (and, with `drop`, those not handed out yet are forgotten)."""
        with self._changed:
            self._open = False
            if drop:
                self._jobs.clear()
            self._changed.notify_all()

    def take(self, wait: bool) -> list[Job] | None:
        """A batch; [] if none is ready and `wait` is false; None once the feed is closed and empty."""
        with self._changed:
            while wait and self._open and len(self._jobs) < BATCH_SIZE:
                self._changed.wait()
            if not self._jobs:
                return [] if self._open else None
            if self._open:
                if len(self._jobs) < BATCH_SIZE:
                    return []
                size = BATCH_SIZE
            else:  # the last jobs go out in smaller batches, so that every worker is busy until the end
                size = max(1, min(BATCH_SIZE, len(self._jobs) // (self._workers * 4)))
            return [self._jobs.popleft() for _ in range(min(size, len(self._jobs)))]


class Session:
    """Jobs run while the caller is still making them: it submits each job as soon as it has it, and then
    waits only for the results it needs next. Use as a context manager; leaving it early (an error, Ctrl-C)
    drops the jobs not sent to a worker yet.
    """

    def __init__(self, pool: WorkerPool, progress: Callable[[int], None] | None) -> None:
        self._pool = pool
        self._progress = progress
        self._feed = _Feed(pool.size)
        self._changed = threading.Condition()
        self._queued: set[str] = set()  # submitted, not run yet
        self._awaited: set[str] = set()  # what `results` waits for
        self._errors: list[BaseException] = []
        self._stopping = threading.Event()
        #: Distinct jobs submitted that were not in the cache: the ones this session runs.
        self.to_run = 0
        self._first_submitted: float | None = None
        self._last_done: float | None = None
        self._threads = [threading.Thread(target=self._serve, args=(w,), daemon=True) for w in pool._workers]
        for thread in self._threads:
            thread.start()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        # Leaving early (an error, Ctrl-C) drops the jobs not sent yet and ends those the workers hold at once:
        # their results would not be used, and a run of slow snippets must stop in a second, not after them.
        # The workers are replaced when the pool is used again; no result of an ended job is cached.
        if kind is not None:
            self._stopping.set()
        self._feed.close(drop=kind is not None)
        if kind is not None:
            for worker in self._pool._workers:
                worker.interrupt()
        for thread in self._threads:
            thread.join()
        if kind is None and self._errors:
            raise self._errors[0]

    def submit(self, job: Job) -> str:
        """Run `job` unless its result is known or on its way; its key."""
        key = job.key
        with self._changed:
            if key in self._queued or self._pool.known(key):
                self._pool.hits += 1
                return key
            self._pool.spawn()
            self._queued.add(key)
            self.to_run += 1
            if self._first_submitted is None:
                self._first_submitted = time.perf_counter()
        self._feed.put(job)
        return key

    def close(self) -> None:
        """No more jobs: the last ones go out without waiting for a full batch."""
        self._feed.close()

    def results(self, keys: Iterable[str]) -> dict[str, RunResult]:
        """The results of submitted jobs, by key, once all of them have run.

        The first call closes the session: every job is submitted before any result is asked for.
        """
        self.close()
        wanted = list(keys)
        with self._changed:
            cache = self._pool.cache
            self._awaited = {key for key in wanted if key not in cache}
            if not self._awaited <= self._queued:
                raise KeyError("results were asked for jobs that were never submitted")
            while self._awaited and not self._errors:
                self._changed.wait()
            if self._errors:
                raise self._errors[0]
            return {key: cache[key] for key in wanted}

    def span(self) -> float:
        """Seconds from the first job submitted to run until the last result so far (0 if none ran)."""
        with self._changed:
            if self._first_submitted is None or self._last_done is None:
                return 0.0
            return self._last_done - self._first_submitted

    def _done(self, job: Job, result: RunResult) -> None:
        if self._pool.store is not None:
            self._pool.store.put(self._pool.stored_key(job.key), result)
        with self._changed:
            self._last_done = time.perf_counter()
            self._pool.cache[job.key] = result
            self._pool.runs += 1
            self._queued.discard(job.key)
            if job.key in self._awaited:
                self._awaited.discard(job.key)
                if not self._awaited:
                    self._changed.notify_all()
            if self._progress:
                self._progress(1)

    def _serve(self, worker: _Worker) -> None:
        try:
            _serve(worker, self._feed, self._done, self._stopping)
        except BaseException as exc:  # raised to the caller by `results` or on leaving the session
            with self._changed:
                self._errors.append(exc)
                self._changed.notify_all()


def _serve(worker: _Worker, feed: _Feed, done: Callable[[Job, RunResult], None], stopping: threading.Event) -> None:
    """Run batches from the feed on one worker, keeping IN_FLIGHT of them queued on it, until it is closed and empty."""
    backlog: list[Job] = []  # jobs to send again after the worker was replaced
    sent: deque[Job] = deque()  # jobs sent, oldest first, without a reply yet
    messages: deque[int] = deque()  # how many of them each message in flight still holds
    started = time.monotonic()  # when the worker started the oldest job in `sent`
    while True:
        while len(messages) < IN_FLIGHT:
            if backlog:
                batch, backlog = backlog, []
            else:
                taken = feed.take(wait=not sent)
                if not taken:
                    break
                batch = taken
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
            return  # the feed is closed and empty (take waits otherwise)
        job = sent.popleft()
        result = worker.receive(job, started)
        if stopping.is_set():  # the session was left early: this result is not wanted, nor the jobs after it
            worker.stop()
            return
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
