"""Markdown → HTML and highlighted code, done once here for every exporter that speaks HTML.

Bank text is Markdown with raw HTML disabled, so text that looks like markup (`<script>`, `a<b`) is shown
as written. Code is highlighted by Pygments with inline styles on a fixed light background, so it reads
the same offline, in Anki's night mode and in an LMS that strips style sheets.
"""

from __future__ import annotations

from functools import lru_cache
from html import escape
from typing import Any

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer, TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

PRE_STYLE = (
    "background:#f6f8fa;color:#1f2328;border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;"
    "overflow-x:auto;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:90%;"
    "line-height:1.4;text-align:left;white-space:pre"
)
INLINE_CODE_STYLE = "background:#f6f8fa;color:#1f2328;border-radius:4px;padding:0 3px;font-family:monospace"

_formatter = HtmlFormatter(noclasses=True, nowrap=True, style="default")


_python = PythonLexer()
#: Code in which a token may span lines, so it must be highlighted whole.
_MULTILINE_TOKENS = ('"""', "'''", "\\\n")


@lru_cache(maxsize=65536)
def _python_line(line: str) -> str:
    return highlight(line, _python, _formatter).rstrip("\n")


def _highlight(code: str, language: str) -> str:
    if not language:
        return escape(code, quote=False)
    if language == "python" and not any(mark in code for mark in _MULTILINE_TOKENS):
        # Variants share most of their lines: highlighting line by line, with a cache, does that work once.
        return "\n".join(_python_line(line) for line in code.split("\n"))
    try:
        lexer = _python if language == "python" else get_lexer_by_name(language)
    except ClassNotFound:
        lexer = TextLexer()
    return highlight(code, lexer, _formatter)


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


# Large enough that a 10,000-variant export renders each distinct text once for all its formats.
@lru_cache(maxsize=262144)
def markdown_html(text: str) -> str:
    """Block HTML for a Markdown text."""
    return _markdown.render(text).strip()


@lru_cache(maxsize=262144)
def inline_html(text: str) -> str:
    """HTML without an enclosing paragraph, for one-line texts such as choices; blocks stay blocks."""
    html = markdown_html(text)
    if html.startswith("<p>") and html.endswith("</p>") and html.count("<p>") == 1:
        return html[3:-4]
    return html
