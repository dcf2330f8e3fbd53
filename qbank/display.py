"""How outcomes are shown to a learner, and varied into near misses (comparing them is `qbank.answers`)."""

from __future__ import annotations

import math
import re
from typing import Any

from qbank import answers


def code_span(text: str) -> str:
    """Markdown inline code holding `text` exactly, whatever backticks it contains."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_block(text: str, language: str = "") -> str:
    """A fenced Markdown code block holding `text` exactly."""
    longest = max((len(run) for run in re.findall(r"^`{3,}", text, flags=re.M)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip(chr(10))}\n{fence}"


def as_code(text: str) -> str:
    return code_block(text) if "\n" in text else code_span(text)


def plain_of(markdown: str) -> str:
    """The text inside a Markdown text that is one code span or one fenced block; other text as it is."""
    text = markdown.strip()
    block = re.fullmatch(r"(`{3,}|~{3,})[^\n]*\n(.*)\n\1", text, flags=re.S)
    if block:
        return block.group(2)
    span = re.fullmatch(r"(`+)(.*?)\1", text, flags=re.S)
    if span and "`" * len(span.group(1)) not in span.group(2):
        inner = span.group(2)
        return inner[1:-1] if len(inner) > 2 and inner.startswith(" ") and inner.endswith(" ") else inner
    return text


def format_value(value: Any, digits: int = 4) -> str:
    """A value as Python would write it, floats to `digits` significant digits."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        if value == 0:
            return "0.0"  # -0.0 too: a person does not write the sign of zero
        places = max(1, digits)
        text = format(value, f".{places}g")
        if "e-" in text and abs(value) >= 1e-6:
            # As a person writes it, 0.000005 rather than 5e-06 (Python's `g` turns to exponents below 1e-4).
            decimals = places - 1 - math.floor(math.log10(abs(value)))
            text = f"{value:.{decimals}f}".rstrip("0")
        elif "e+" in text and abs(value) < 1e15:
            text = f"{round(value)}.0"  # 123457.0 rather than 1.235e+05: the whole number, as Python prints it
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(item, digits) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {format_value(v, digits)}" for k, v in value.items()) + "}"
    return str(value)


def rounded(value: float, digits: int) -> tuple[str, float]:
    """A number to `digits` significant digits, written without an exponent (every LMS reads it), and half a unit
    of its last digit. Whole numbers stay whole and exact."""
    if isinstance(value, int) or not math.isfinite(value) or (value == int(value) and abs(value) < 10**digits):
        return (str(int(value)) if math.isfinite(value) else repr(value)), 0.0
    exponent = math.floor(math.log10(abs(value)))
    decimals = digits - 1 - exponent
    text = f"{round(value, decimals):.{max(0, decimals)}f}"
    return text, 0.5 * 10.0 ** (-decimals)


NO_ERROR = "No error: the code runs to the end."


def error_text(error: dict[str, str] | None, show: str = "line") -> str:
    """Plain text of an error outcome, or that none was raised.

    `show`: the exception `type` only; with the first `sentence` of its message; its first `line` (the default);
    or the `full` message.
    """
    if error is None:
        return NO_ERROR
    message = error["message"].strip()
    if show == "type" or not message:
        return error["type"]
    if show == "line":
        message = message.splitlines()[0]
    elif show == "sentence":
        message = re.split(r"(?<=[.!?])\s", message.splitlines()[0], maxsplit=1)[0]
    return f"{error['type']}: {message}"


def size_text(dims: list[int]) -> str:
    return f"torch.Size([{', '.join(map(str, dims))}])"


def _shape_misses(dims: list[int]) -> list[tuple[list[int], str]]:
    """Shapes a learner gets by a typical mistake, each with the mistake (never the right shape itself)."""
    misses: list[tuple[list[int], str]] = []
    for i in range(len(dims) - 1):
        swapped = list(dims)
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
        misses.append((swapped, "Two dimensions are in the wrong order: check which one comes first."))
    if dims:
        misses.append(([*dims[:-1], dims[-1] * 2], "The last dimension is counted twice."))
        if dims[-1] % 2 == 0:
            misses.append(([*dims[:-1], dims[-1] // 2], "The last dimension is only half counted."))
        misses.append((dims[1:], "A dimension is missing."))
        misses.append(([1, *dims], "There is one dimension too many."))
        misses.append(([*dims[:-1], dims[-1] + 1], "The last dimension is off by one."))
    return misses


def near_misses(plain: str, value: Any = None, *, digits: int = 4) -> list[tuple[str, str]]:
    """Plain-text answers close to the right one, each with feedback that explains it without giving the key.

    Used when mistakes and bank distractors run out. Numbers get no feedback: any hint would give them away.
    """
    dims = answers.dims_of(plain) if plain.startswith("torch.Size(") else None
    if dims is not None:
        return [(size_text(d), why) for d, why in _shape_misses(dims)]
    if isinstance(value, bool):
        return [(repr(not value), "")]
    if isinstance(value, int):
        return [(str(v), "") for v in (value * 2, value + 1, value - 1, value // 2 if value > 1 else value + 2)]
    if isinstance(value, float) and math.isfinite(value):
        candidates = [
            value * 2,
            value / 2,
            1 - value if 0 <= value <= 1 else value + 1,
            value + 0.1,
            value - 0.1,
        ]
        return [(format_value(v, digits), "") for v in candidates]
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [(format_value(d), why) for d, why in _shape_misses(list(value))]
    return []
