"""Jinja2 templates and expressions over a question's parameters.

Bank text is data from a file someone shared, so it is rendered in Jinja's sandbox; every name must be
defined (StrictUndefined), so a typo in a template is an error rather than an empty string.
"""

from __future__ import annotations

import re
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

_env = ImmutableSandboxedEnvironment(
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


@contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Stop the block with a TemplateProblem once it has taken `seconds`: a loop in a template or a constraint
    must not hang a run. Uses the main thread's real-time timer; elsewhere the block runs without a limit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _TooSlow:
        raise TooSlow(f"{what} took longer than {seconds:g} s (a loop that runs too long?)") from None
    finally:
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
    """Render one template; errors become TemplateProblem."""
    if "{" not in source and "\r" not in source:
        # No tag, expression or comment: Jinja gives the text back without its one final newline.
        return source[:-1] if source.endswith("\n") else source
    template = _template(source)
    try:
        text: str = template.environment.concat(template.root_render_func(_context(template, context)))  # type: ignore[attr-defined]
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"template uses an undefined name: {exc.message}") from None
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
    """Evaluate one expression such as `hidden != features` or `not batch_first`."""
    template = _expression(source)
    try:
        values = _context(template, context)
        for _ in template.root_render_func(values):
            pass
        return values.vars["result"]
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"expression '{source}' uses an undefined name: {exc.message}") from None
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
    return set(meta.find_undeclared_variables(ast))


def unknown_names(source: str, known: Iterable[str], *, expression: bool = False) -> list[str]:
    allowed = set(known) | set(_env.globals)
    return sorted(names_used(source, expression=expression) - allowed)
