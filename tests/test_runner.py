"""Contained execution: a runaway snippet costs only itself; the pool recovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qbank.models import RunLimits
from qbank.runner import Job, WorkerPool

FAST = RunLimits(wall_seconds=3, cpu_seconds=2, memory_mb=512)
#: For code that burns CPU: wall time to spare, so that the CPU limit is what stops it even on a busy machine.
CPU_BOUND = RunLimits(wall_seconds=60, cpu_seconds=2, memory_mb=512)

RUNAWAYS = {
    "infinite loop": ("while True:\n    pass", "CPU time"),
    "sleeping forever": ("import time\ntime.sleep(60)", "wall-time limit of 3 s"),
    # With the worker's own timers blocked, the parent has to stop it.
    "blocking the timers": (
        "import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGPROF})\n"
        "time.sleep(60)",
        "wall-time limit of 3 s",
    ),
    "huge allocation": ("import torch\nx = torch.ones(10**11)", "memory"),
    "python allocation": ("x = bytearray(10**10)", "memory"),
    "sys.exit": ("import sys\nsys.exit(3)", "sys.exit(3)"),
    "os._exit": ("import os\nos._exit(0)", "exit code 0"),
    "segfault": ("import ctypes\nctypes.string_at(0)", "SIGSEGV"),
    "kill itself": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "SIGKILL"),
    "endless printing": ("while True:\n    print('x' * 1000)", "printed more than"),
    "writing into the reply channel": (
        "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'not a reply\\n')\n"
        "    except OSError:\n        pass",
        "wrote into the channel",
    ),
    "swallowing the limit": (
        "while True:\n    try:\n        pass\n    except Exception:\n        pass",
        "CPU time",
    ),
}


@pytest.mark.parametrize("name", list(RUNAWAYS))
def test_runaway_is_contained_and_the_next_job_runs(name: str, pool: WorkerPool) -> None:
    code, reason = RUNAWAYS[name]
    before = Job(f"print('before {name}')", limits=FAST)
    after = Job(f"print('after {name}')", limits=FAST)
    bad = Job(code + f"\n# {name}", limits=CPU_BOUND if reason == "CPU time" else FAST)
    results = pool.run([before, bad, after])
    assert results[bad.key].failure is not None and reason in results[bad.key].failure
    assert results[before.key].stdout == f"before {name}\n"
    assert results[after.key].stdout == f"after {name}\n"


def test_outcomes_are_recorded(pool: WorkerPool) -> None:
    jobs = [
        Job("print(1 + 1)"),
        Job("x = [1, 2]", "x + [3]"),
        Job("raise KeyError('k')"),
        Job("import torch\nt = torch.zeros(2, 3)", "t.shape"),
        Job("x = (", None),
    ]
    results = [pool.run([job])[job.key] for job in jobs]
    assert results[0].stdout == "2\n" and results[0].error is None
    assert results[1].value == [1, 2, 3] and results[1].has_value
    assert results[2].error == {"type": "KeyError", "message": "'k'"}
    assert results[3].value == [2, 3]
    assert results[4].failure and "not valid Python" in results[4].failure


def test_state_does_not_leak_between_runs(pool: WorkerPool) -> None:
    first = Job("import torch\ntorch.set_default_dtype(torch.float64)\nleaked = 1")
    second = Job("import torch\nprint(torch.zeros(1).dtype, 'leaked' in globals())")
    pool.run([first])
    assert pool.run([second])[second.key].stdout == "torch.float32 False\n"


def test_two_workers_share_a_batch() -> None:
    with WorkerPool(2) as fresh:  # each sandboxed worker is pid 2 of its own namespace: told apart by its mark
        jobs = [Job(f"import os\nprint(os.environ['QBANK_WORKER_MARK'])\n# {i}") for i in range(40)]
        results = fresh.run(jobs)
        assert len({results[job.key].stdout for job in jobs}) == 2
        assert fresh.runs == 40


def test_a_timer_signal_after_a_job_ended_is_ignored() -> None:
    # A limit that fires just as a job ends must not escape into the worker's own loop and end it.
    script = """
import signal, torch
from qbank import worker
signal.signal(signal.SIGPROF, worker._on_cpu_limit)
signal.signal(signal.SIGALRM, worker._on_wall_limit)
job = {"code": "print(1)", "expression": None, "cpu_seconds": 5, "wall_seconds": 5, "memory_mb": 512}
reply = worker._run_one(job, torch, worker._virtual_memory())
signal.raise_signal(signal.SIGALRM)
signal.raise_signal(signal.SIGPROF)
print(reply["stdout"].strip(), reply["failure"])
"""
    done = subprocess.run([sys.executable, "-P", "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "None"]


# Global state a snippet may change; the snippet after it must see a fresh interpreter's.
SPOILER = """
import os, random, warnings, torch
torch.set_printoptions(precision=1, sci_mode=True)
torch.set_default_dtype(torch.float64)
torch.set_grad_enabled(False)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(2)
os.environ["QBANK_SPOILED"] = "1"
warnings.simplefilter("error")
random.seed(99)
os.chdir("/")
"""
PROBE = """
import os, random, warnings, torch
print(torch.tensor([1.23456789]))
print(torch.tensor([1.5]).dtype, torch.is_grad_enabled(), torch.are_deterministic_algorithms_enabled())
print(torch.get_num_threads(), os.environ.get("QBANK_SPOILED"), os.getcwd() != "/")
warnings.warn("a warning is not an error")
print(random.random())
"""


def test_a_snippet_cannot_change_what_the_next_one_records() -> None:
    fresh = subprocess.run(
        [sys.executable, "-c", "import random, torch; torch.set_num_threads(1); random.seed(0)\n" + PROBE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    spoiler, probe = Job(SPOILER, limits=FAST), Job(PROBE, limits=FAST)
    with WorkerPool(1) as one:  # one worker: the probe runs where the spoiler ran
        results = one.run([spoiler, probe])
    assert results[spoiler.key].failure is None and results[spoiler.key].error is None
    assert results[probe.key].error is None, results[probe.key].error
    assert results[probe.key].stdout == fresh
    assert "tensor([1.2346])" in fresh


PATCHER = """
import builtins, sys, types, torch
fake = types.ModuleType("helpers")
fake.answer = 42
sys.modules["helpers"] = fake
torch.nn.GRU = torch.nn.LSTM
torch.Tensor.__repr__ = lambda self: "patched"
builtins.len = lambda x: -1
torch.zeros = torch.ones
del sys.modules["json"]
"""
PATCH_PROBE = """
import json, sys, torch
print(torch.nn.GRU.__name__, repr(torch.tensor([1.0])), len([1, 2]), torch.zeros(1).item(), "json" in sys.modules)
try:
    import helpers
    print("helpers found")
except ModuleNotFoundError:
    print("no helpers")
"""


def test_a_snippet_cannot_patch_modules_for_the_next_one() -> None:
    fresh = subprocess.run([sys.executable, "-c", PATCH_PROBE], capture_output=True, text=True, check=True).stdout
    assert fresh == "GRU tensor([1.]) 2 0.0 True\nno helpers\n"
    patcher, probe = Job(PATCHER, limits=FAST), Job(PATCH_PROBE, limits=FAST)
    with WorkerPool(1) as one:  # one worker: the probe runs where the patcher ran
        results = one.run([patcher, probe])
    assert results[patcher.key].failure is None and results[patcher.key].error is None
    assert results[probe.key].stdout == fresh


def test_a_snippet_that_removes_its_folder_costs_only_itself(pool: WorkerPool) -> None:
    remover = Job("import os, tempfile\nd = tempfile.mkdtemp()\nos.chdir(d)\nos.rmdir(d)\nprint(1)", limits=FAST)
    after = Job("import os\nprint(os.path.isdir(os.getcwd()))", limits=FAST)
    results = pool.run([remover, after])
    assert results[remover.key].stdout == "1\n"
    assert results[after.key].stdout == "True\n"


def daemon_code(marker: Path) -> str:
    """Snippet lines that start a daemon (`setsid`, then a second fork) which writes its pid to `marker` and sleeps."""
    return f"""
import os, signal, time
child = os.fork()
if child == 0:
    os.setsid()
    if os.fork() == 0:
        with open({str(marker)!r}, "w") as out:
            out.write(str(os.getpid()))
        time.sleep(120)
    os._exit(0)
os.waitpid(child, 0)
"""


def assert_ends_soon(pid: int) -> None:
    """The process ends within 5 seconds (if not, it is killed, and the test fails)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"the daemon {pid} was still running")


def test_a_snippet_that_daemonizes_leaves_nothing_running(tmp_path: Path) -> None:
    """Without the sandbox (which refuses a new process: see test_sandbox), a daemon is ended with its snippet."""
    marker = tmp_path / "daemon.pid"
    code = (
        daemon_code(marker)
        + f"""
while not os.path.exists({str(marker)!r}):
    time.sleep(0.01)
print("started a daemon")
"""
    )
    job = Job(code, limits=FAST)
    with WorkerPool(1, sandbox=False) as trusted:
        assert trusted.run([job])[job.key].stdout == "started a daemon\n"
    assert_ends_soon(int(marker.read_text()))


def test_a_daemon_of_a_worker_that_had_to_be_killed_is_ended_too(tmp_path: Path) -> None:
    """The snippet blocks the worker's own time limits, so the parent kills the worker; its daemon goes as well
    (without the sandbox, which allows no daemon)."""
    marker = tmp_path / "daemon.pid"
    code = (
        daemon_code(marker)
        + """
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGPROF})
time.sleep(60)
"""
    )
    job = Job(code, limits=RunLimits(cpu_seconds=1, wall_seconds=1, memory_mb=512))
    with WorkerPool(1, sandbox=False) as one:
        result = one.run([job])[job.key]
    assert result.failure is not None
    assert_ends_soon(int(marker.read_text()))
