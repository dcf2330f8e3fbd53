"""Jinja2 templates and expressions over a question's parameters.

Bank text is data from a file someone shared, so it is rendered in Jinja's sandbox; every name must be
defined (StrictUndefined), so a typo in a template is an error rather than an empty string.
"""

from __future__ import annotations

import math
import re
import resource
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.runtime import new_context
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: The most bits an integer a template computes may have (10 ** 20000 has 66,439).
MAX_INT_BITS = 100_000
#: Seconds the templates of one variant may take to render.
RENDER_SECONDS = 10.0
#: The memory a render may add to the process: a template that builds more fails instead of exhausting the machine.
RENDER_MEMORY_MB = 256


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox, with the operators that build big values checked before they build them: `'a' * 10**10`,
    `[0] * 10**9` and `10 ** 10 ** 9` fail at once (other ways to a huge value meet the memory bound of `bounded`)."""

    intercepted_binops = frozenset(["*", "**", "+"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _refuse_huge(operator, left, right)
        return super().call_binop(context, operator, left, right)


def _refuse_huge(operator: str, left: Any, right: Any) -> None:
    sized = (str, bytes, list, tuple)
    if operator == "*":
        for items, times in ((left, right), (right, left)):
            if isinstance(items, sized) and isinstance(times, int) and len(items) * times > MAX_RENDERED:
                raise TemplateProblem(
                    f"a value repeated {times:,} times would hold {len(items) * times:,} items; at most "
                    f"{MAX_RENDERED:,} are allowed"
                )
    elif operator == "+":
        if isinstance(left, sized) and isinstance(right, sized) and len(left) + len(right) > MAX_RENDERED:
            raise TemplateProblem(f"a value joined here would hold more than {MAX_RENDERED:,} items")
    elif (
        isinstance(left, int)
        and isinstance(right, int)
        and right > 0
        and abs(left) > 1
        and right * math.log2(abs(left)) > MAX_INT_BITS
    ):
        raise TemplateProblem(f"a power here would have more than {MAX_INT_BITS:,} bits; at most that is allowed")


_env = _Sandbox(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
)


#: The most characters one rendered template may hold: a loop that writes more is a bug, not a question.
MAX_RENDERED = 1_000_000


class TemplateProblem(Exception):
    """A template or expression that cannot be parsed or rendered; the caller adds where it came from."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class TooSlow(TemplateProblem):
    """A template or expression that ran past its time limit (see `time_limit`)."""


class _TooSlow(BaseException):
    """Raised by the timer inside a render that passed its time; a BaseException so no `except Exception` in
    Jinja or in a template's filters can swallow it."""


def _on_alarm(signum: int, frame: object) -> None:
    raise _TooSlow


#: What a template needing too much memory is told.
TOO_BIG = f"needs more than {RENDER_MEMORY_MB} MB (it builds a huge string, list or number)"
#: Whether a `bounded` block is running (an inner one leaves the outer's bounds in place).
_bounded = False


def _virtual_memory() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:  # not Linux: the block is bounded in time only
        return None


@contextmanager
def bounded(seconds: float, what: str) -> Iterator[None]:
    """Stop the block with a TemplateProblem once it has taken `seconds`, or needs `RENDER_MEMORY_MB` more memory: a
    template or a constraint must neither hang a run nor exhaust the machine. Uses the main thread's real-time timer
    and the process's address-space limit; elsewhere the block runs without bounds."""
    global _bounded
    if _bounded or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    limit = resource.getrlimit(resource.RLIMIT_AS)
    used = _virtual_memory()
    if used is not None:
        allowed = used + RENDER_MEMORY_MB * 1024 * 1024
        if limit[0] == resource.RLIM_INFINITY or limit[0] > allowed:
            hard = limit[1]
            resource.setrlimit(
                resource.RLIMIT_AS, (allowed if hard == resource.RLIM_INFINITY else min(allowed, hard), hard)
            )
    _bounded = True
    try:
        yield
    except _TooSlow:
        raise TooSlow(f"{what} took longer than {seconds:g} s (a loop that runs too long?)") from None
    except MemoryError:
        raise TemplateProblem(f"{what} {TOO_BIG}") from None
    finally:
        _bounded = False
        resource.setrlimit(resource.RLIMIT_AS, limit)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@lru_cache(maxsize=4096)
def _template(source: str) -> jinja2.Template:
    try:
        return _env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error: {exc.message}", exc.lineno) from None


@lru_cache(maxsize=4096)
def _expression(source: str) -> jinja2.Template:
    """The expression as a template that stores its value in `result` (as compile_expression builds it)."""
    try:
        return _env.compile_expression(source, undefined_to_none=False)._template  # type: ignore[attr-defined,no-any-return]
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"expression syntax error in '{source}': {exc.message}") from None


#: Jinja merges its globals into every render through a ChainMap, which costs more than rendering a short
#: template; a plain dict merged once per call, passed as a shared context, gives templates the same names.
#: (Without `globals`, the context skips listing them, which only imports and macros use.)
_GLOBALS = dict(_env.globals)


def _context(template: jinja2.Template, values: Mapping[str, Any]) -> Any:
    return new_context(_env, template.name, template.blocks, {**_GLOBALS, **values}, shared=True)


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render one template; errors become TemplateProblem. Bounded in time and memory (see `bounded`)."""
    if "{" not in source and "\r" not in source:
        # No tag, expression or comment: Jinja gives the text back without its one final newline.
        return source[:-1] if source.endswith("\n") else source
    if not _bounded:
        with bounded(RENDER_SECONDS, "rendering the template"):
            return _render(source, context)
    return _render(source, context)


def _render(source: str, context: Mapping[str, Any]) -> str:
    template = _template(source)
    try:
        text: str = template.environment.concat(template.root_render_func(_context(template, context)))  # type: ignore[attr-defined]
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"template uses an undefined name: {exc.message}") from None
    except TemplateProblem:
        raise
    except MemoryError:
        raise TemplateProblem(f"the template {TOO_BIG}") from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from None
    except Exception as exc:  # arithmetic in a template, e.g. a division by zero
        raise TemplateProblem(f"template failed: {type(exc).__name__}: {exc}") from None
    if len(text) > MAX_RENDERED:
        raise TemplateProblem(f"the template renders to {len(text):,} characters; at most {MAX_RENDERED:,} are kept")
    return text


_BLOCK_TAG = re.compile(r"\{%([-+]?)(.*?)([-+]?)%\}", re.S)


@lru_cache(maxsize=4096)
def code_template(source: str) -> str:
    """A code template whose block tags keep the lines a reader sees.

    A line that holds only block tags (`{% if flag %}`, indented or not) disappears whole, as in text templates. A
    block tag inside a line of code keeps what is around it: the indentation before it and the line break after it
    (Jinja's `{%+` and `+%}`), so `x = 1{% if a %} + 2{% endif %}` stays one line and the next line stays the next.
    """
    lines = source.split("\n")
    for index, line in enumerate(lines):
        if "{%" not in line or not _BLOCK_TAG.sub("", line).strip():
            continue
        lines[index] = _BLOCK_TAG.sub(
            lambda tag: "{%" + (tag.group(1) or "+") + tag.group(2) + (tag.group(3) or "+") + "%}", line
        )
    return "\n".join(lines)


def render_code(source: str, context: Mapping[str, Any]) -> str:
    """Render a code template (see `code_template`)."""
    return render(code_template(source), context)


def evaluate(source: str, context: Mapping[str, Any]) -> Any:
    """Evaluate one expression such as `hidden != features` or `not batch_first` (bounded as `render` is)."""
    if not _bounded:
        with bounded(RENDER_SECONDS, f"evaluating '{source}'"):
            return _evaluate(source, context)
    return _evaluate(source, context)


def _evaluate(source: str, context: Mapping[str, Any]) -> Any:
    template = _expression(source)
    try:
        values = _context(template, context)
        for _ in template.root_render_func(values):
            pass
        return values.vars["result"]
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"expression '{source}' uses an undefined name: {exc.message}") from None
    except TemplateProblem as exc:
        raise TemplateProblem(f"expression '{source}': {exc}") from None
    except MemoryError:
        raise TemplateProblem(f"expression '{source}' {TOO_BIG}") from None
    except Exception as exc:
        raise TemplateProblem(f"expression '{source}' failed: {type(exc).__name__}: {exc}") from None


def names_used(source: str, *, expression: bool = False) -> set[str]:
    """The free names a template (or an expression) refers to, for checking them against the parameters."""
    text = "{{ " + source + " }}" if expression else source
    try:
        ast = _env.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        kind = "expression" if expression else "template"
        raise TemplateProblem(f"{kind} syntax error: {exc.message}", None if expression else exc.lineno) from None
    # Listing the names compiles the template, and compiling computes its constant parts: bounded as a render.
    try:
        with bounded(RENDER_SECONDS, "reading the template"):
            return set(meta.find_undeclared_variables(ast))
    except TemplateProblem:
        raise
    except Exception as exc:  # a constant part that fails, e.g. a division by zero
        raise TemplateProblem(f"template failed: {type(exc).__name__}: {exc}") from None


def unknown_names(source: str, known: Iterable[str], *, expression: bool = False) -> list[str]:
    allowed = set(known) | set(_env.globals)
    return sorted(names_used(source, expression=expression) - allowed)
