"""Markdown → HTML and highlighted code, done once here for every exporter that speaks HTML.

Bank text is Markdown with raw HTML disabled, so text that looks like markup (`<script>`, `a<b`) is shown
as written. Code is highlighted by Pygments with inline styles on a fixed light background, so it reads
the same offline, in Anki's night mode and in an LMS that strips style sheets.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from html import escape
from typing import Any

from markdown_it import MarkdownIt
from pygments.lexers import PythonLexer, get_lexer_by_name
from pygments.styles import get_style_by_name
from pygments.util import ClassNotFound

PRE_STYLE = (
    "background:#f6f8fa;color:#1f2328;border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;"
    "overflow-x:auto;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:90%;"
    "line-height:1.4;text-align:left;white-space:pre"
)
INLINE_CODE_STYLE = "background:#f6f8fa;color:#1f2328;border-radius:4px;padding:0 3px;font-family:monospace"

_style = get_style_by_name("default")
_python = PythonLexer(stripnl=False)  # leading blank lines are part of the code


@cache
def _css(token_type: Any) -> str:
    """The inline style Pygments' default style gives a token type."""
    style = _style.style_for_token(token_type)
    parts = [f"color: #{style['color']}"] if style["color"] else []
    parts += ["font-weight: bold"] * bool(style["bold"]) + ["font-style: italic"] * bool(style["italic"])
    parts += ["text-decoration: underline"] * bool(style["underline"])
    return "; ".join(parts)


def _spans(code: str, lexer: Any) -> str:
    html = []
    tokens = list(lexer.get_tokens(code))
    if not code.endswith("\n") and tokens and tokens[-1][1].endswith("\n"):
        # The lexer adds a final newline; it may end a token such as a backslash escape (`'\`).
        tokens[-1] = (tokens[-1][0], tokens[-1][1][:-1])
    for token_type, value in tokens:
        text = escape(value, quote=False)
        css = _css(token_type) if value.strip() else ""
        html.append(f'<span style="{css}">{text}</span>' if css else text)
    return "".join(html).rstrip("\n")


#: Lines that differ only in digits of the same class lex alike: number syntax tells apart only 0, 1 (binary),
#: 2-7 (octal) and 8-9 (decimal), so every digit is replaced by its class's first digit.
_DIGIT_CLASSES = str.maketrans("0123456789", "0122222288")


@lru_cache(maxsize=65536)
def _line_shape(shape: str) -> tuple[tuple[int, str], ...]:
    """(length, style) of each token of a line whose digits are replaced by their class."""
    return tuple((len(value), _css(kind) if value.strip() else "") for kind, value in _python.get_tokens(shape))


@lru_cache(maxsize=65536)
def _python_line(line: str) -> str:
    html, start = [], 0
    for length, css in _line_shape(line.translate(_DIGIT_CLASSES)):
        text = escape(line[start : start + length], quote=False)
        start += length
        html.append(f'<span style="{css}">{text}</span>' if css and text else text)
    return "".join(html)


#: Code in which a token may span lines, so it must be highlighted whole.
_MULTILINE_TOKENS = ('"""', "'''", "\\\n")


def _highlight(code: str, language: str) -> str:
    """Code as HTML spans with inline styles (Pygments' lexer and default style, a lighter formatter)."""
    if not language:
        return escape(code, quote=False)
    if language == "python" and not any(mark in code for mark in _MULTILINE_TOKENS):
        # Variants share most of their lines: lexing line by line, with a cache, does that work once.
        return "\n".join(_python_line(line) for line in code.split("\n"))
    try:
        lexer = _python if language == "python" else get_lexer_by_name(language, stripnl=False)
    except ClassNotFound:
        return escape(code, quote=False)
    return _spans(code, lexer)


@lru_cache(maxsize=65536)
def code_html(code: str, language: str = "python") -> str:
    """`<pre><code>` with inline-styled highlighting; every character of `code` survives."""
    body = _highlight(code.rstrip("\n"), language)
    return f'<pre style="{PRE_STYLE}"><code>{body.rstrip(chr(10))}</code></pre>'


def _fence(content: str, language: str, _attrs: str) -> str:
    return code_html(content.rstrip("\n"), language.split()[0] if language else "")


def _code_inline(_renderer: Any, tokens: Any, index: int, _options: Any, _env: Any) -> str:
    return f'<code style="{INLINE_CODE_STYLE}">{escape(tokens[index].content, quote=False)}</code>'


_markdown = MarkdownIt("commonmark", {"html": False, "highlight": _fence, "breaks": False})
_markdown.add_render_rule("code_inline", _code_inline)


#: Characters with a meaning in Markdown (with digits at the start of a line, which may number a list).
_SYNTAX = frozenset("\\`*_[]<>#!&|~+=:-\t\r")


def _is_prose(text: str) -> bool:
    """Plain prose: one paragraph that Markdown would show as it is, so it needs no parser."""
    if not text or _SYNTAX.intersection(text):
        return False
    return all(line and line == line.strip() and not line[0].isdigit() for line in text.split("\n"))


#: One code span and nothing else, with no backtick or space at its ends inside.
_CODE_SPAN = re.compile(r"`([^`\s](?:[^`\n]*[^`\s])?)`")


# Large enough that a 10,000-variant export renders each distinct text once for all its formats.
@lru_cache(maxsize=262144)
def markdown_html(text: str) -> str:
    """Block HTML for a Markdown text (what markdown-it renders, with fast paths for the common shapes)."""
    if _is_prose(text):
        return f"<p>{escape(text, quote=False).replace(chr(34), '&quot;')}</p>"
    span = _CODE_SPAN.fullmatch(text)
    if span:
        return f'<p><code style="{INLINE_CODE_STYLE}">{escape(span.group(1), quote=False)}</code></p>'
    return _markdown.render(text).strip()


@lru_cache(maxsize=262144)
def inline_html(text: str) -> str:
    """HTML without an enclosing paragraph, for one-line texts such as choices; blocks stay blocks."""
    html = markdown_html(text)
    if html.startswith("<p>") and html.endswith("</p>") and html.count("<p>") == 1:
        return html[3:-4]
    return html
