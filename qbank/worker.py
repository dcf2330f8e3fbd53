"""The worker process: imports torch once, then runs many snippets sent by `qbank.runner`.

Protocol: one JSON line in per batch (`{"jobs": [...]}`), one JSON line out per job, in order, written
as soon as the job ends (so a crash loses no finished job's reply). The parent may queue the next batch
before this one is done. The protocol uses private copies of stdin/stdout; the real file descriptors
0-2 point at /dev/null so a snippet (or a C library) writing to them cannot corrupt a message.
"""

from __future__ import annotations

import contextlib
import dis
import io
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
import types
import warnings
from typing import Any, BinaryIO

MAX_STDOUT = 1_000_000
#: The most characters a recorded value may take as JSON (a key nobody can read is no key).
MAX_VALUE = 1_000_000
#: Integers longer than Python will write as text (its int-to-str limit) cannot be recorded.
_MAX_INT_BITS = int(sys.get_int_max_str_digits() * math.log2(10)) - 1
#: How torch's allocator words running out of memory (it raises RuntimeError, not MemoryError).
_OOM_MESSAGES = ("can't allocate memory", "not enough memory")


class LimitExceeded(BaseException):
    """Raised inside a snippet when it passes a limit; a BaseException so `except Exception` cannot hide it."""


class _CappedOutput(io.StringIO):
    def write(self, text: str) -> int:
        if self.tell() + len(text) > MAX_STDOUT:
            raise LimitExceeded(f"printed more than {MAX_STDOUT:,} characters")
        return super().write(text)


#: Whether a job's limits are in force: a timer signal that arrives after the job ended is ignored.
_armed = False
#: The wall-time limit of the job running now, for the message when it passes it.
_wall_seconds = 0.0


def _on_cpu_limit(signum: int, frame: Any) -> None:
    if _armed:
        raise LimitExceeded("used more CPU time than its limit")


def over_wall_time(seconds: float) -> str:
    """Why a job failed that ran past its wall-time limit (said by the worker, or by the parent that stopped it)."""
    return f"ran longer than its wall-time limit of {seconds:g} s"


def _on_wall_limit(signum: int, frame: Any) -> None:
    if _armed:
        raise LimitExceeded(over_wall_time(_wall_seconds))


class _Fresh:
    """The process state a snippet could change for the snippets after it, as it was before the first.

    A key must be what a fresh interpreter gives: after `torch.set_printoptions(precision=1)` in one snippet, the
    next one's printed tensors would otherwise be recorded with one decimal.
    """

    def __init__(self, torch: Any) -> None:
        self.cwd = os.getcwd()
        self.environ = dict(os.environ)
        self.environ_data = dict(os.environ._data)  # type: ignore[attr-defined]  # compared in 1 µs, not 60
        self.filters = list(warnings.filters)
        self.modules = dict(sys.modules)
        # The namespaces a snippet may patch (`torch.nn.GRU = …`, `builtins.print = …`, `Tensor.__repr__ = …`):
        # each compared with its copy after every snippet (a dict comparison, microseconds) and put back.
        import builtins

        watched = [builtins, torch, torch.nn, torch.nn.functional, torch.nn.Module, torch.Tensor, math, random, os]
        self.namespaces = [(space, dict(vars(space))) for space in watched]
        #: Whether the snippet that ran could have changed modules (see `may_patch`); checking costs ~50 µs.
        self.suspect = True

    def _restore_modules(self) -> None:
        """Modules a snippet put in `sys.modules` without importing them from disk go (a fresh interpreter would not
        find them); patched attributes of the watched namespaces get their values back."""
        if sys.modules != self.modules:
            for name in sys.modules.keys() - self.modules.keys():
                spec = getattr(sys.modules[name], "__spec__", None)
                if spec is None or (not getattr(spec, "origin", None) and not spec.submodule_search_locations):
                    del sys.modules[name]
            for name, module in self.modules.items():
                if sys.modules.get(name) is not module:
                    sys.modules[name] = module
        for space, saved in self.namespaces:
            current = vars(space)
            if current == saved:
                continue
            for key in current.keys() - saved.keys():
                if not isinstance(current[key], types.ModuleType):  # a submodule loaded on first use may stay
                    delattr(space, key)
            for key, value in saved.items():
                if current.get(key, _MISSING) is not value:
                    setattr(space, key, value)

    def restore(self, torch: Any) -> None:
        if self.suspect:
            self._restore_modules()
        torch.set_default_dtype(torch.float32)
        torch.set_grad_enabled(True)
        torch.set_printoptions(profile="default", sci_mode=None)
        torch.set_default_device(None)
        if torch.are_deterministic_algorithms_enabled():
            torch.use_deterministic_algorithms(False)
        if torch.is_anomaly_enabled():
            torch.autograd.set_detect_anomaly(False)
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
        if os.environ._data != self.environ_data:  # type: ignore[attr-defined]
            os.environ.clear()
            os.environ.update(self.environ)
        warnings.filters[:] = self.filters  # type: ignore[index]  # a list at run time, typed as a Sequence
        try:
            if os.getcwd() == self.cwd:
                return
        except FileNotFoundError:  # the snippet removed the folder it ran in
            pass
        try:
            os.chdir(self.cwd)
        except OSError:
            self.cwd = tempfile.mkdtemp(prefix="qbank-worker-")
            os.chdir(self.cwd)


def _lift_limits(torch: Any) -> None:
    """End a job's limits, and undo the global state a snippet may have changed."""
    global _armed
    _armed = False
    signal.setitimer(signal.ITIMER_PROF, 0)
    signal.setitimer(signal.ITIMER_REAL, 0)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    if _fresh is not None:
        _fresh.restore(torch)


_MISSING = object()
#: What compiled code does when it could change a module for the snippets after it: set or delete an attribute
#: (`torch.zeros = …`, `x.y += 1`), or name a way around that syntax (setattr, sys.modules, exec, importlib, …).
#: Most snippets only call and print, and skip the check; one that sets an attribute of its own objects
#: (`model.weight = …`) pays for it (~50 µs).
_ATTRIBUTE_WRITES = (dis.opmap["STORE_ATTR"], dis.opmap["DELETE_ATTR"])
_RISKY_NAMES = frozenset(
    [
        "setattr",
        "delattr",
        "globals",
        "vars",
        "exec",
        "eval",
        "compile",
        "__import__",
        "__dict__",
        "__class__",
        "__builtins__",
        "builtins",
        "modules",
        "importlib",
        "ModuleType",
    ]
)


def may_patch(code: types.CodeType) -> bool:
    """Whether running `code` could change a module (see above); nested functions and classes included."""
    operations = code.co_code[::2]
    if any(operation in operations for operation in _ATTRIBUTE_WRITES) or not _RISKY_NAMES.isdisjoint(code.co_names):
        return True
    return any(isinstance(const, types.CodeType) and may_patch(const) for const in code.co_consts)


#: Set once torch is imported, before the first snippet.
_fresh: _Fresh | None = None


def to_json(value: Any, torch: Any) -> Any:
    """A JSON form of a value, so an outcome can be stored, compared and re-checked."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _MAX_INT_BITS:
        raise TypeError(f"an integer of more than {sys.get_int_max_str_digits():,} digits cannot be recorded")
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, torch.Size):
        return list(value)
    if isinstance(value, torch.Tensor):
        return to_json(value.detach().cpu().tolist(), torch)
    if isinstance(value, torch.dtype):
        return str(value)
    if isinstance(value, list | tuple):
        return [to_json(item, torch) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: to_json(item, torch) for key, item in value.items()}
    raise TypeError(f"a value of type {type(value).__name__} cannot be recorded; convert it in the expression")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: Any) -> Any:
    """Recorded text without lone surrogates, which no file format can carry: each becomes U+FFFD."""
    if isinstance(value, str):
        if _SURROGATE.search(value) is None:
            return value
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_text(item) for item in value]
    if isinstance(value, dict):
        return {_text(key): _text(item) for key, item in value.items()}
    return value


def _run_one(job: dict[str, Any], torch: Any, base_memory: int) -> dict[str, Any]:
    global _armed, _wall_seconds
    result: dict[str, Any] = {"stdout": "", "error": None, "failure": None}
    namespace: dict[str, Any] = {"__name__": "__main__"}
    output = _CappedOutput()
    memory = base_memory + int(job["memory_mb"]) * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        code = compile(job["code"], "<snippet>", "exec")
    except SyntaxError as exc:
        return {
            **result,
            "seconds": 0.0,
            "failure": f"the code is not valid Python: {exc.msg} (line {exc.lineno})",
        }
    if _fresh is not None:
        # An expression is checked too (by name: it is compiled only once the code has run).
        expression = job.get("expression") or ""
        _fresh.suspect = may_patch(code) or any(name in expression for name in _RISKY_NAMES)
    # The CPU generator only: torch.manual_seed also queues seeds for every accelerator backend, recording
    # a Python traceback each time, which costs more than most snippets.
    torch.default_generator.manual_seed(0)
    random.seed(0)
    started = time.perf_counter()
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory if hard == resource.RLIM_INFINITY else min(memory, hard), hard))
        _armed = True
        signal.setitimer(signal.ITIMER_PROF, float(job["cpu_seconds"]))
        # A sleeping or waiting snippet is stopped here; the parent kills a worker only if this fails.
        _wall_seconds = float(job["wall_seconds"])
        signal.setitimer(signal.ITIMER_REAL, _wall_seconds)
        with contextlib.redirect_stdout(output), torch.inference_mode(bool(job.get("inference_mode"))):
            try:
                exec(code, namespace)
            except Exception as exc:
                result["error"] = {"type": type(exc).__name__, "message": str(exc)}
            if job.get("expression") and result["error"] is None:
                value = eval(compile(job["expression"], "<expression>", "eval"), namespace)
                result["value"] = to_json(value, torch)
                if not isinstance(result["value"], bool | int | float | None) and (
                    len(json.dumps(result["value"])) > MAX_VALUE
                ):
                    result.pop("value")
                    raise LimitExceeded(f"the answer expression's value is larger than {MAX_VALUE:,} characters")
    except LimitExceeded as exc:
        result["failure"] = str(exc)
    except SystemExit as exc:
        result["failure"] = f"the code called sys.exit({exc.code!r})"
    except MemoryError:
        result["failure"] = f"the code needed more memory than its limit of {job['memory_mb']} MB"
    except Exception as exc:  # the expression itself failed, or its value cannot be recorded
        result["failure"] = f"the answer expression failed: {type(exc).__name__}: {exc}"
    except BaseException as exc:  # KeyboardInterrupt and friends raised by the snippet
        result["failure"] = f"the code raised {type(exc).__name__}"
    finally:
        _lift_limits(torch)
    result["seconds"] = time.perf_counter() - started
    result["stdout"] = _text(output.getvalue())
    result["error"] = _text(result["error"])
    if "value" in result:
        result["value"] = _text(result["value"])
    error = result["error"]
    if error and (
        error["type"] in ("MemoryError", "OutOfMemoryError") or any(s in error["message"] for s in _OOM_MESSAGES)
    ):
        result["failure"] = f"the code needed more memory than its limit of {job['memory_mb']} MB"
    return result


def _adopt_orphans() -> bool:
    """Make processes a snippet leaves behind (even after `setsid` and a double fork) children of this worker
    (Linux's child subreaper), so that `_end_leftovers` finds them; False where that is not available."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(36, 1, 0, 0, 0) == 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _end_leftovers() -> None:
    """End every process a snippet started that is still running once the snippet is over."""
    listing = f"/proc/self/task/{os.getpid()}/children"
    for _ in range(100):  # ending one may hand its own children over to us: look again
        try:
            with open(listing) as children:
                pids = [int(pid) for pid in children.read().split()]
        except OSError:
            return
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


#: Set from the environment in a sandboxed worker (see `qbank.sandbox`): the folder a snippet may write in, and the
#: folders it may read besides.
_scratch = ""
_readable: tuple[str, ...] = ()
#: The largest file a sandboxed snippet may write.
MAX_FILE_MB = 64
#: Set when a snippet passed the file-size limit (the kernel's SIGXFSZ); the write itself fails with EFBIG.
_file_too_large = False
#: Audit events that start a process or replace this one.
_PROCESS_EVENTS = frozenset(
    [
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.posix_spawnp",
        "os.spawn",
        "os.exec",
        "os.system",
        "subprocess.Popen",
        "pty.spawn",
        "os.startfile",
    ]
)
_NETWORK_EVENTS = frozenset(
    [
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
    ]
)
#: Audit events that change the file system, with the positions of the paths they change.
_WRITE_EVENTS = {
    "os.mkdir": (0,),
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.rename": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
}
_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def _inside(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == folder or path.startswith(folder + "/") for folder in folders)


def _readable_path(path: str) -> bool:
    if _inside(path, (_scratch, *_readable)) or path in _DEVICES:
        return True
    if path.startswith("/proc/"):  # this process's own entries, and the machine's (cpuinfo, meminfo, …)
        first = path.split("/")[2]
        return not first.isdigit() or first == str(os.getpid())
    return False


def _refuse(what: str) -> None:
    raise LimitExceeded(f"the sandbox does not let the code {what}")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """What a sandboxed snippet tries that the sandbox refuses becomes its failure, saying what it tried (the
    sandbox itself is the barrier; this names the attempt, which would otherwise read as an ordinary error)."""
    if not _armed:
        return
    if event == "open":
        path, mode, flags = args
        if not isinstance(path, str | bytes | os.PathLike):
            return
        where = os.path.realpath(os.fsdecode(path))
        writes = bool(set(mode or "") & set("wax+")) or bool(
            (flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
        )
        if writes and not _inside(where, (_scratch,)) and where not in _DEVICES:
            _refuse(f"write {where} (it may write in its own folder only)")
        if not _readable_path(where):
            _refuse(f"open {where} (outside its own folder and the Python and torch it runs with)")
    elif event in _WRITE_EVENTS:
        for index in _WRITE_EVENTS[event]:
            path = args[index] if index < len(args) else None
            if isinstance(path, str | bytes | os.PathLike):
                where = os.path.realpath(os.fsdecode(path))
                if not _inside(where, (_scratch,)):
                    _refuse(f"change {where} (it may write in its own folder only)")
    elif event in _PROCESS_EVENTS:
        _refuse(f"start a process ({event})")
    elif event in _NETWORK_EVENTS:
        _refuse(f"use the network ({_network_target(event, args)})")
    elif event in ("os.kill", "os.killpg", "signal.pthread_kill") and args[0] not in (0, os.getpid()):
        _refuse(f"signal process {args[0]}")


def _network_target(event: str, args: tuple[Any, ...]) -> str:
    """What a network call was for: `connect to 127.0.0.1:5000`, `look up example.com`."""
    verb = event.partition(".")[2]
    if verb in ("getaddrinfo", "gethostbyname", "gethostbyaddr"):
        host = args[0].decode(errors="replace") if isinstance(args[0], bytes) else args[0]
        port = args[1] if verb == "getaddrinfo" and len(args) > 1 and args[1] not in (None, 0, "") else None
        return f"look up {host}" + (f":{port}" if port is not None else "")
    address = args[1] if len(args) > 1 else None
    if isinstance(address, tuple) and len(address) >= 2:
        address = f"{address[0]}:{address[1]}"
    return f"{verb} {address}" if address is not None else verb


def _on_file_size(signum: int, frame: Any) -> None:
    global _file_too_large
    _file_too_large = True


def _enter_sandbox() -> None:
    """Limits and the audit hook of a sandboxed worker; called once torch is imported."""
    global _scratch, _readable
    _scratch = os.environ["QBANK_SCRATCH"]
    _readable = tuple(folder for folder in os.environ.get("QBANK_READABLE", "").split(os.pathsep) if folder)
    for limit, value in ((resource.RLIMIT_FSIZE, MAX_FILE_MB * 1024 * 1024), (resource.RLIMIT_NOFILE, 256)):
        _, hard = resource.getrlimit(limit)
        resource.setrlimit(limit, (value if hard == resource.RLIM_INFINITY else min(value, hard), hard))
    signal.signal(signal.SIGXFSZ, _on_file_size)
    sys.addaudithook(_audit)


def _leave_scratch(reply: dict[str, Any]) -> None:
    """After a sandboxed snippet: a full folder or too large a file fails it; then its folder is emptied, so the
    next snippet sees nothing of it."""
    global _file_too_large
    if reply.get("failure") is None:
        space = os.statvfs(_scratch)
        if _file_too_large:
            reply["failure"] = f"the code wrote a file larger than the sandbox's limit of {MAX_FILE_MB} MB"
        elif space.f_bavail * space.f_frsize < 64 * 1024:
            size = space.f_blocks * space.f_frsize // (1024 * 1024)
            reply["failure"] = f"the code filled the {size} MB the sandbox lets it write"
    _file_too_large = False
    for entry in os.scandir(_scratch):
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)


def _virtual_memory() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    # A worker started while its parent ran a bounded render inherited the parent's address-space limit.
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    proto_in: BinaryIO = os.fdopen(os.dup(0), "rb")
    proto_out: BinaryIO = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(1)
    global _fresh
    _fresh = _Fresh(torch)
    signal.signal(signal.SIGPROF, _on_cpu_limit)
    signal.signal(signal.SIGALRM, _on_wall_limit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    base_memory = _virtual_memory()
    adopting = _adopt_orphans()
    if os.environ.get("QBANK_SCRATCH"):
        _enter_sandbox()
    proto_out.write(b'{"ready": true}\n')
    proto_out.flush()
    for line in proto_in:
        request = json.loads(line)
        for job in request["jobs"]:
            try:
                reply = _run_one(job, torch, base_memory)
            except LimitExceeded as exc:  # a timer fired as the job ended, before its limits were lifted
                _lift_limits(torch)
                reply = {"stdout": "", "error": None, "failure": str(exc), "seconds": 0.0}
            if adopting:
                _end_leftovers()
            if _scratch:
                _leave_scratch(reply)
            proto_out.write(json.dumps(reply).encode() + b"\n")
            proto_out.flush()


if __name__ == "__main__":
    main()
