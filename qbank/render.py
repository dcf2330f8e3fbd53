"""Markdown → HTML and highlighted code, done once here for every exporter that speaks HTML.

Bank text is Markdown with raw HTML disabled, so text that looks like markup (`<script>`, `a<b`) is shown
as written. Code is highlighted by Pygments' lexer in one palette, in two flavours: inline styles (light), for
LMS formats whose pages qbank does not style; or classes, for the pages that carry qbank's style sheet (the HTML
challenge and Anki cards), which also give the dark palette. Long code lines wrap with a hanging indent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache, lru_cache
from html import escape
from itertools import groupby
from typing import Any

from markdown_it import MarkdownIt
from pygments.lexers import PythonLexer, get_lexer_by_name
from pygments.token import Comment, Keyword, Name, Number, Operator, String
from pygments.util import ClassNotFound

#: The code palette: a class per kind of token, with its colour on the light and on the dark background. Pages
#: that carry qbank's style sheet (the HTML challenge, Anki cards) get classes and both palettes from it
#: (`exporters/templates/qbank.css.j2`); every other HTML gets the light colours inline. Each text colour has a
#: contrast of at least 4.5:1 with its background (WCAG AA).
PALETTE: dict[str, tuple[str, str]] = {
    "code-bg": ("#f6f8fa", "#161b22"),
    "code-fg": ("#1f2328", "#e6edf3"),
    "code-line": ("#d0d7de", "#3d444d"),
    "wrap": ("#8c959f", "#6e7681"),  # the bar beside a wrapped line's continuation (decoration, not text)
    "kw": ("#cf222e", "#ff7b72"),
    "const": ("#0550ae", "#79c0ff"),
    "num": ("#0550ae", "#79c0ff"),
    "str": ("#0a3069", "#a5d6ff"),
    "com": ("#57606a", "#9198a1"),
    "bi": ("#953800", "#ffa657"),
    "fn": ("#8250df", "#d2a8ff"),
}
#: Token types (and their subtypes) → palette class; any other token keeps the text colour.
_TOKEN_CLASSES = {
    Keyword.Constant: "const",
    Keyword: "kw",
    Operator.Word: "kw",
    Name.Builtin: "bi",
    Name.Function: "fn",
    Name.Class: "fn",
    Name.Decorator: "fn",
    Comment: "com",
    String: "str",
    Number: "num",
}
#: How far (in characters, beyond the line's own indentation) the continuation of a wrapped line is indented.
HANG = 4
_MONO = "ui-monospace,SFMono-Regular,Menlo,Consolas,monospace"
PRE_STYLE = (
    f"background:{PALETTE['code-bg'][0]};color:{PALETTE['code-fg'][0]};border:1px solid {PALETTE['code-line'][0]};"
    f"border-radius:6px;padding:8px 12px;overflow-x:auto;font-family:{_MONO};font-size:90%;line-height:1.4;"
    "text-align:left;white-space:pre-wrap;overflow-wrap:anywhere"
)
INLINE_CODE_STYLE = (
    f"background:{PALETTE['code-bg'][0]};color:{PALETTE['code-fg'][0]};border-radius:4px;padding:0 3px;"
    "font-family:monospace"
)

_python = PythonLexer(stripnl=False)  # leading blank lines are part of the code


@cache
def _token_class(token_type: Any) -> str:
    while token_type is not None:
        if token_type in _TOKEN_CLASSES:
            return _TOKEN_CLASSES[token_type]
        token_type = token_type.parent
    return ""


@cache
def _open(kind: str, classes: bool) -> str:
    """The opening tag of a token of palette class `kind`."""
    if classes:
        return f'<span class="qb-{kind}">'
    weight = ";font-weight:bold" if kind == "kw" else ""
    return f'<span style="color:{PALETTE[kind][0]}{weight}">'


#: Lines that differ only in digits of the same class lex alike: number syntax tells apart only 0, 1 (binary),
#: 2-7 (octal) and 8-9 (decimal), so every digit is replaced by its class's first digit.
_DIGIT_CLASSES = str.maketrans("0123456789", "0122222288")

Piece = tuple[str, str]  # (palette class or "", text)


@lru_cache(maxsize=65536)
def _line_shape(shape: str) -> tuple[tuple[int, str], ...]:
    """(length, palette class) of each token of a line whose digits are replaced by their class."""
    return tuple((len(value), _token_class(kind) if value.strip() else "") for kind, value in _python.get_tokens(shape))


def _python_line(line: str) -> list[Piece]:
    pieces, start = [], 0
    for length, kind in _line_shape(line.translate(_DIGIT_CLASSES)):
        if start < len(line):
            pieces.append((kind, line[start : start + length]))
        start += length
    return pieces


#: Code in which a token may span lines, so it must be lexed whole.
_MULTILINE_TOKENS = ('"""', "'''", "\\\n")


def _lines(code: str, language: str) -> list[list[Piece]]:
    """The code's lines, each as its tokens' (palette class, text) (Pygments' lexer)."""
    if language == "python" and not any(mark in code for mark in _MULTILINE_TOKENS):
        # Variants share most of their lines: lexing line by line, with a cache, does that work once.
        return [_python_line(line) for line in code.split("\n")]
    lexer: Any = None
    if language:
        try:
            lexer = _python if language == "python" else get_lexer_by_name(language, stripnl=False)
        except ClassNotFound:
            lexer = None
    return lexed_lines(code, lexer)


def lexed_lines(code: str, lexer: Any) -> list[list[Piece]]:
    """The code lexed whole (or shown plain, without a lexer), cut into lines."""
    tokens = [("", code)] if lexer is None else [(_token_class(t), v) for t, v in lexer.get_tokens(code)]
    lines: list[list[Piece]] = [[]]
    for kind, value in tokens:
        for index, part in enumerate(value.split("\n")):
            if index:
                lines.append([])
            if part:
                lines[-1].append((kind if part.strip() else "", part))
    if lexer is not None and not code.endswith("\n") and len(lines) > 1 and not lines[-1]:
        lines.pop()  # the lexer adds a final newline
    return lines


def merged(pieces: Sequence[Piece]) -> list[Piece]:
    """Neighbouring pieces of the same class as one."""
    return [(kind, "".join(value for _, value in run)) for kind, run in groupby(pieces, key=lambda piece: piece[0])]


@lru_cache(maxsize=65536)
def _line_html(pieces: tuple[Piece, ...], classes: bool) -> str:
    """One line as a block whose wrapped continuation hangs HANG characters beyond the line's own indentation."""
    text = "".join(value for _, value in pieces)
    body = "".join(
        f"{_open(kind, classes)}{escape(value, quote=False)}</span>" if kind else escape(value, quote=False)
        for kind, value in merged(pieces)
    )
    indent = len(text) - len(text.lstrip(" "))
    if classes:
        # An empty line holds a <br>: a block with nothing in it would be left out when the code is copied.
        return f'<span class="qb-ln" style="--qb-i:{indent}">{body or "<br>"}</span>'
    if not body:  # an empty block would take no height
        return '<span style="display:block;min-height:1.4em"></span>'
    hang = indent + HANG
    return f'<span style="display:block;padding-left:{hang}ch;text-indent:-{hang}ch">{body}</span>'


_NEWLINE = {True: '<span class="qb-nl">\n</span>', False: '<span style="display:none">\n</span>'}


@lru_cache(maxsize=65536)
def code_html(code: str, language: str = "python", classes: bool = False) -> str:
    """`<pre><code>` with highlighting; every character of `code` survives.

    Long lines wrap at the box's edge, their continuation indented beyond the line's own indentation (and marked by a
    bar where qbank's style sheet applies), so code is never cut off on a phone. Each line is a block; the newline
    between two lines is kept in a hidden element, so copying gives the code as it is, and HTML whose styles are
    stripped (some LMS) still shows one line per line. `classes`: classes for qbank's style sheet instead of inline
    styles.
    """
    lines = _lines(code.rstrip("\n"), language)
    body = _NEWLINE[classes].join(_line_html(tuple(pieces), classes) for pieces in lines)
    opening = '<pre class="qb-pre">' if classes else f'<pre style="{PRE_STYLE}">'
    return f"{opening}<code>{body}</code></pre>"


def _fence(content: str, language: str, _attrs: str) -> str:
    return code_html(content.rstrip("\n"), language.split()[0] if language else "")


def _fence_classed(content: str, language: str, _attrs: str) -> str:
    return code_html(content.rstrip("\n"), language.split()[0] if language else "", classes=True)


_CODE_OPEN = {False: f'<code style="{INLINE_CODE_STYLE}">', True: '<code class="qb-code">'}


def _code_inline(_renderer: Any, tokens: Any, index: int, _options: Any, _env: Any) -> str:
    return f"{_CODE_OPEN[False]}{escape(tokens[index].content, quote=False)}</code>"


def _code_inline_classed(_renderer: Any, tokens: Any, index: int, _options: Any, _env: Any) -> str:
    return f"{_CODE_OPEN[True]}{escape(tokens[index].content, quote=False)}</code>"


_markdown = {
    False: MarkdownIt("commonmark", {"html": False, "highlight": _fence, "breaks": False}),
    True: MarkdownIt("commonmark", {"html": False, "highlight": _fence_classed, "breaks": False}),
}
_markdown[False].add_render_rule("code_inline", _code_inline)
_markdown[True].add_render_rule("code_inline", _code_inline_classed)


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
def markdown_html(text: str, classes: bool = False) -> str:
    """Block HTML for a Markdown text (what markdown-it renders, with fast paths for the common shapes).

    `classes`: code styled by classes of qbank's style sheet instead of inline styles (see `code_html`)."""
    if _is_prose(text):
        return f"<p>{escape(text, quote=False).replace(chr(34), '&quot;')}</p>"
    span = _CODE_SPAN.fullmatch(text)
    if span:
        return f"<p>{_CODE_OPEN[classes]}{escape(span.group(1), quote=False)}</code></p>"
    return _markdown[classes].render(text).strip()


@lru_cache(maxsize=262144)
def inline_html(text: str, classes: bool = False) -> str:
    """HTML without an enclosing paragraph, for one-line texts such as choices; blocks stay blocks."""
    html = markdown_html(text, classes)
    if html.startswith("<p>") and html.endswith("</p>") and html.count("<p>") == 1:
        return html[3:-4]
    return html
