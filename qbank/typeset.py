"""PDF through Typst (https://typst.app/docs/reference/): bank Markdown turned into Typst markup, then compiled.

The `typst` package from PyPI bundles the compiler and its fonts (Latin, Greek and Cyrillic scripts), so a PDF needs no
TeX; system fonts are used too, for text in other scripts (a name in Chinese needs a CJK font installed). Every
piece of text from a bank goes into the markup as a Typst string literal (`#"…"`), never as markup, so no character
in a stem or in code can change the layout; Markdown structure (paragraphs, emphasis, code, lists, links) is mapped
from markdown-it's tokens. The same source gives the same PDF bytes on the same machine (the document has no date).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

from qbank.errors import QbankError

_PARSER = MarkdownIt("commonmark")

#: Set once at the top of every document: A4, a sober serif for text, a monospace that bundles with Typst.
PREAMBLE = """#set document(date: none)
#set page(paper: "a4", margin: (x: 2cm, y: 1.8cm), numbering: "1 / 1")
#set text(font: "Libertinus Serif", size: 11pt, lang: "en")
#set par(justify: false)
#show raw: set text(font: "DejaVu Sans Mono", size: 8.5pt)
"""


def string(text: str) -> str:
    """A Typst string literal holding `text` exactly."""
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 32 or 0xD800 <= ord(char) <= 0xDFFF or ord(char) == 0x7F:
            out.append(f"\\u{{{ord(char):x}}}" if not 0xD800 <= ord(char) <= 0xDFFF else "\\u{fffd}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def text(plain: str) -> str:
    """Plain text shown as written."""
    return f"#{string(plain)}" if plain else ""


#: Width of one character of the code font, in em (DejaVu Sans Mono).
_CHAR_EM = 0.602


def code_block(code: str, language: str = "python") -> str:
    """A code block whose long lines wrap inside the page, each continuation indented 4 characters beyond its
    line's own indentation (one paragraph per line, with a hanging indent)."""
    lines = []
    for line in code.rstrip("\n").split("\n"):
        indent = len(line) - len(line.lstrip(" "))
        # An empty paragraph would take no height: an empty line holds a zero-width space.
        body = f"#raw({string(line)}, lang: {string(language)})" if line.strip() else r'#raw("\u{200b}")'
        lines.append(f"#par(hanging-indent: {(indent + 4) * _CHAR_EM:.3f}em)[{body}]")
    return (
        "#block(fill: luma(245), inset: 6pt, radius: 3pt, width: 100%)[\n"
        '#set text(font: "DejaVu Sans Mono", size: 8.5pt)\n'
        "#set par(leading: 0.5em, spacing: 0.5em, justify: false)\n" + "\n".join(lines) + "\n]\n"
    )


@lru_cache(maxsize=4096)
def markdown(source: str) -> str:
    """Bank Markdown as Typst markup (blocks separated by blank lines)."""
    return _blocks(_PARSER.parse(source)).strip() + "\n"


def inline_markdown(source: str) -> str:
    """Bank Markdown of one short text (an option) as inline Typst content: paragraphs joined by line breaks."""
    blocks = [
        _inline(token.children or []) if token.type == "inline" else _block_text(token)
        for token in _PARSER.parse(source)
        if token.type in ("inline", "fence", "code_block", "html_block")
    ]
    return " #linebreak() ".join(part for part in blocks if part)


def _block_text(token: Token) -> str:
    if token.type in ("fence", "code_block"):
        return f"#raw({string(token.content.rstrip(chr(10)))})"
    return text(token.content.strip())


def _blocks(tokens: Sequence[Token]) -> str:
    out: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        kind = token.type
        if kind == "inline":
            out.append(_inline(token.children or []))
        elif kind == "paragraph_close" or kind == "heading_close":
            out.append("\n\n")
        elif kind == "heading_open":
            out.append("#strong[")
            out.append(_inline(tokens[index + 1].children or []))
            out.append("]\n\n")
            index += 2  # the inline and the close
        elif kind in ("fence", "code_block"):
            out.append(code_block(token.content.rstrip("\n"), token.info.split()[0] if token.info.strip() else ""))
            out.append("\n")
        elif kind == "html_block":
            out.append(text(token.content.strip()) + "\n\n")
        elif kind == "hr":
            out.append("#line(length: 100%)\n\n")
        elif kind in ("bullet_list_open", "ordered_list_open"):
            end = _closing(tokens, index)
            out.append(_list(tokens[index + 1 : end], ordered=kind == "ordered_list_open"))
            index = end
        elif kind == "blockquote_open":
            end = _closing(tokens, index)
            out.append(f"#quote(block: true)[{_blocks(tokens[index + 1 : end]).strip()}]\n\n")
            index = end
        index += 1
    return "".join(out)


def _closing(tokens: Sequence[Token], start: int) -> int:
    """The index of the token closing the one at `start`."""
    depth = 0
    for index in range(start, len(tokens)):
        depth += tokens[index].nesting
        if depth == 0:
            return index
    raise QbankError("unbalanced Markdown tokens")  # markdown-it always closes what it opens


def _list(tokens: Sequence[Token], ordered: bool) -> str:
    items: list[str] = []
    index = 0
    while index < len(tokens):
        if tokens[index].type == "list_item_open":
            end = _closing(tokens, index)
            items.append(f"[{_blocks(tokens[index + 1 : end]).strip()}]")
            index = end
        index += 1
    return f"#{'enum' if ordered else 'list'}({', '.join(items)})\n\n"


def _inline(tokens: Sequence[Token]) -> str:
    out: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        kind = token.type
        if kind == "text":
            out.append(text(token.content))
        elif kind == "code_inline":
            out.append(f"#raw({string(token.content)})")
        elif kind == "softbreak":
            out.append(" ")
        elif kind == "hardbreak":
            out.append("#linebreak()")
        elif kind in ("em_open", "strong_open", "link_open"):
            end = _closing(tokens, index)
            inner = _inline(tokens[index + 1 : end])
            if kind == "em_open":
                out.append(f"#emph[{inner}]")
            elif kind == "strong_open":
                out.append(f"#strong[{inner}]")
            else:
                out.append(f"#link({string(str(token.attrs.get('href', '')))})[{inner}]")
            index = end
        elif kind == "image":
            out.append(text(token.content or str(token.attrs.get("src", ""))))
        elif kind == "html_inline":
            out.append(text(token.content))
        index += 1
    return "".join(out)


def pdf(source: str) -> bytes:
    """Typst source compiled to PDF bytes (the same source gives the same bytes)."""
    try:
        import typst
    except ImportError:  # pragma: no cover - typst is a dependency; a broken install is still worth one line
        raise QbankError("PDF output needs the `typst` package: pip install typst") from None
    try:
        return bytes(typst.compile(source.encode("utf-8"), format="pdf"))
    except Exception as exc:  # a bug of ours in the markup: say so without a traceback
        raise QbankError(f"Typst could not typeset a sheet: {str(exc).strip()[:500]}") from None
