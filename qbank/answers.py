"""The answer model: when two answers mean the same thing.

Everything that compares answers goes through here: `check` (a hand-written key against what torch did),
choice assembly (a distractor that means the key is not a distractor), typed answers (which spellings a
learner may type) and the exports that grade typed answers.

An answer text is read as a sequence of items. Numbers, sequences and constants are read by value, so
`torch.Size([2, 3])`, `(2, 3)`, `[2,3]` and `2x3` are one answer, and so are `tensor([[8.]],
grad_fn=<MmBackward0>)` and `[[8.0]]` (on one line or many). Words are compared as written, with
whitespace normalized. An error claim (`RuntimeError`, `raises a RuntimeError: ...`, `no error`) is read as
an exception type and, where given, the start of its message.

A number is as precise as it is written: `0.269` stands for anything from 0.2685 to 0.2695; a whole number
(`8`, `8.`) is exact. A hand-written claim is checked at its own precision (the coarser of the two), so `0.269`
agrees with 0.26894; two options, or a typed answer and the key, are compared at the finer one, so `27.0` and
`27.0327` are different options and `0.3` is not accepted for 0.2689. An absolute tolerance may widen either.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Literal

# --- what an answer is made of ---------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: float
    #: Half a unit of the last digit written (0.269 → 0.0005); 0 for a whole number.
    spread: float


@dataclass(frozen=True)
class Const:
    """True, False or None."""

    name: str


@dataclass(frozen=True)
class Word:
    text: str


@dataclass(frozen=True)
class Rest:
    """`...` in a sequence: elements left out (torch prints long tensors this way)."""


@dataclass(frozen=True)
class Seq:
    """A list, tuple, shape or tensor: its elements, each a run of items."""

    elements: tuple[tuple[Item, ...], ...]


Item = Num | Const | Word | Rest | Seq


@dataclass(frozen=True)
class ErrorClaim:
    """An exception type (None: no error) and, where the claim gives one, the start of its message."""

    type: str | None
    message: tuple[Item, ...] | None = None
    #: The message ends in `…`: its last word may be cut short.
    cut: bool = False


Answer = Seq | ErrorClaim

# --- reading text ------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<num>(?<![A-Za-z0-9_.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![A-Za-z0-9_])
        |(?<![A-Za-z0-9_.])[-+]?(?:nan|inf)(?![A-Za-z0-9_]))
   |(?P<open>[\[(])
   |(?P<close>[\])])
   |(?P<comma>,)
   |(?P<rest>\.\.\.|…)
   |(?P<punct>[=:;])
   |(?P<word>[^\s\[\](),=:;]+)
    """,
    re.VERBOSE,
)
#: Callables whose print shows one value: `torch.Size([2, 3])` is the shape [2, 3] (in any case: a learner who types
#: `torch.size([2, 3])` means the same shape).
_WRAPPERS = {"torch.size", "size", "tensor", "torch.tensor", "array", "np.array", "numpy.array"}
_CONSTANTS = {"true": "True", "false": "False", "none": "None", "null": "None"}
_SHAPE_X = re.compile(r"\s*\d+(?:\s*[x×]\s*\d+)+\s*")
_APPROX = re.compile(r"^\s*(?:approximately|approx\.?|about|around|roughly|≈|~)\s*", re.IGNORECASE)


def _number(text: str) -> Num:
    lowered = text.lower()
    if "nan" in lowered or "inf" in lowered:
        return Num(float(lowered), 0.0)
    mantissa, _, exponent = lowered.partition("e")
    decimals = len(mantissa.partition(".")[2])
    value = float(lowered)
    if decimals == 0 and not exponent:
        return Num(value, 0.0)
    return Num(value, 0.5 * 10.0 ** (int(exponent or 0) - decimals))


def _tokens(text: str) -> list[tuple[str, str]]:
    return [(match.lastgroup or "", match.group()) for match in _TOKEN.finditer(text)]


class _Reader:
    """Recursive descent over tokens: elements separated by commas, groups in brackets."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0

    def elements(self, closing: bool) -> tuple[tuple[Item, ...], ...]:
        elements: list[tuple[Item, ...]] = []
        current: list[Item] = []
        while self.at < len(self.tokens):
            kind, text = self.tokens[self.at]
            self.at += 1
            if kind == "close":
                if closing:
                    break
                current.append(Word(text))  # an unmatched bracket is text
            elif kind == "comma":
                elements.append(tuple(current))
                current = []
            elif kind == "open":
                current.append(Seq(self.elements(closing=True)))
            elif kind == "num":
                current.append(_number(text))
            elif kind == "rest":
                current.append(Rest())
            elif kind == "word" and text.lower() in _CONSTANTS:
                current.append(Const(_CONSTANTS[text.lower()]))
            else:
                current.append(Word(text))
        if current or elements:
            elements.append(tuple(current))  # a trailing comma leaves an empty last element, dropped below
        return tuple(_unwrap(element) for element in elements if element)


def _keyword(element: tuple[Item, ...]) -> bool:
    return len(element) >= 2 and isinstance(element[0], Word) and element[1] == Word("=")


def _unwrap(items: tuple[Item, ...]) -> tuple[Item, ...]:
    """`tensor(x, grad_fn=...)` and `torch.Size(x)` read as x: the call and its keyword arguments are not the value."""
    out: list[Item] = []
    for item in items:
        if isinstance(item, Seq) and out and isinstance(out[-1], Word) and out[-1].text.lower() in _WRAPPERS:
            positional = [element for element in item.elements if not _keyword(element)]
            if len(positional) == 1:
                out[-1:] = list(positional[0])
                continue
        out.append(item)
    return tuple(out)


@lru_cache(maxsize=65536)
def parse(text: str, *, errors: bool = False) -> Answer:
    """Read an answer text; any text reads as something (at worst, as words).

    With `errors`, the text is first read as an error claim (where `none` means "no error", not None).
    """
    if errors:
        error = parse_error(text)
        if error is not None:
            return error
    try:
        return _value_of_text(text)
    except RecursionError:  # brackets nested thousands deep (a hostile print): compared as words
        return _words(text)


def _words(text: str) -> Seq:
    return Seq((tuple(Word(word) for word in text.split()),))


def _value_of_text(text: str) -> Seq:
    body = _APPROX.sub("", text, count=1)
    if _SHAPE_X.fullmatch(body):
        return Seq(tuple((Num(float(d), 0.0),) for d in re.findall(r"\d+", body)))
    elements = _Reader(_tokens(body)).elements(closing=False)
    # One bracketed value alone is that value: "(2, 3)" is the same answer as "2, 3".
    if len(elements) == 1 and len(elements[0]) == 1 and isinstance(elements[0][0], Seq):
        return elements[0][0]
    return Seq(elements)


_NO_ERROR = re.compile(
    r"(?:none|no error|no errors|no exception|nothing|no error is raised|it runs|runs fine|runs without (?:an )?error"
    r"|no error: the code runs to the end|no error \(the code runs to the end\))",
)
_RAISES = re.compile(r"^(?:it\s+)?(?:raises|throws|gives|a|an)\s+(?:an?\s+)?", re.IGNORECASE)
_ERROR_TYPE = re.compile(
    r"(?P<type>[A-Za-z_][A-Za-z0-9_.]*(?:Error|Exception|Warning|Exit|Interrupt|StopIteration))(?:\s*:\s*(?P<message>.*))?",
    re.S,
)


@lru_cache(maxsize=65536)
def parse_error(text: str) -> ErrorClaim | None:
    """An error claim (`RuntimeError`, `raises a ValueError: ...`, `no error`), or None if the text is not one."""
    body = " ".join(text.split())
    if _NO_ERROR.fullmatch(body.rstrip(".").lower()):
        return ErrorClaim(None)
    match = _ERROR_TYPE.fullmatch(_RAISES.sub("", body.rstrip("."), count=1))
    if not match:
        return None
    kind = match.group("type").rsplit(".", 1)[-1]
    message = (match.group("message") or "").strip()
    if not message:
        return ErrorClaim(kind)
    cut = body.endswith(("…", "..."))
    return ErrorClaim(kind, _message_items(message.rstrip("…. ")), cut)


def claims_errors(keys: Sequence[str], options: Sequence[str] = ()) -> bool:
    """Whether a question written by hand is about exceptions: every key reads as an error claim (`RuntimeError`,
    `no error`) and some key or option names an exception. (A computed question is about exceptions when its answer
    is one; `Variant.about_errors` applies both rules.)"""
    claims = [parse_error(text) for text in [*keys, *options]]
    return (
        bool(keys)
        and all(claim is not None for claim in claims[: len(keys)])
        and any(claim is not None and claim.type is not None for claim in claims)
    )


def error_claim(kind: str | None, message: str = "") -> ErrorClaim:
    """What a run raised (or None: nothing), as a claim to compare others with."""
    return ErrorClaim(kind, _message_items(message) if kind and message.strip() else None)


_PRINTS = re.compile(r"\s*(?:[,;]\s*)?(?:and\s+)?(?:it\s+)?\bprints?\b\s*:?\s*", re.IGNORECASE)


def split_printed(text: str) -> tuple[str, str | None]:
    """An error claim and what it says is printed: "no error, prints 3" → ("no error", "3")."""
    match = _PRINTS.search(text)
    if match is None or not text[: match.start()].strip():
        return text.strip(), None
    return text[: match.start()].strip(), text[match.end() :].strip()


def _message_items(message: str) -> tuple[Item, ...]:
    """A message word by word (sentence stops dropped), numbers by value, brackets and commas as words."""
    items: list[Item] = []
    for kind, text in _tokens(message):
        if kind == "num":
            items.append(_number(text))
        elif kind == "word" and text.rstrip("."):
            items.append(Word(text.rstrip(".")))
        elif kind not in ("word", "rest"):
            items.append(Word(text))
    return tuple(items)


def of_value(value: Any) -> Seq:
    """A value recorded from a run (JSON: numbers, bools, None, strings, lists), read as an answer."""
    try:
        if isinstance(value, list):
            return Seq(tuple(_items_of_value(v) for v in value))
        return Seq((_items_of_value(value),))
    except RecursionError:  # lists nested too deeply to walk (or print): equal only to themselves
        return Seq(((Word(f"\0value nested too deeply #{id(value)}"),),))


def _items_of_value(value: Any) -> tuple[Item, ...]:
    if isinstance(value, bool) or value is None:
        return (Const(repr(value)),)
    if isinstance(value, int | float):
        return (Num(float(value), 0.0),)
    if isinstance(value, list):
        return (of_value(value),)
    parsed = _value_of_text(str(value))
    return parsed.elements[0] if len(parsed.elements) == 1 else (parsed,)


# --- comparing -----------------------------------------------------------------------------------------

Precision = Literal["finer", "coarser"]
#: How two numbers are compared: `_close` with the precision rule and tolerance bound.
_Close = Callable[[Num, Num], bool]


def same(
    a: str | Answer,
    b: str | Answer,
    *,
    tolerance: float = 0.0,
    errors: bool = False,
    precision: Precision = "finer",
) -> bool:
    """Whether two answers mean the same.

    Numbers are compared at the `finer` of their two written precisions (two options, or a typed answer and the
    key: `27.0` and `27.0327` differ), or at the `coarser` (a hand-written claim against what torch did: `0.269`
    agrees with 0.26894), give or take `tolerance`. `errors`: the answers are about exceptions (texts are read as
    error claims first).
    """
    if isinstance(a, str) and isinstance(b, str):
        return _same_texts(a, b, tolerance, errors, precision)
    return _same(a, b, tolerance, errors, precision)


@lru_cache(maxsize=65536)
def _same_texts(a: str, b: str, tolerance: float, errors: bool, precision: Precision) -> bool:
    """`same` for two texts: variants of one question compare the same few texts again and again."""
    return _same(a, b, tolerance, errors, precision)


def _same(a: str | Answer, b: str | Answer, tolerance: float, errors: bool, precision: Precision) -> bool:
    left = parse(a, errors=errors) if isinstance(a, str) else a
    right = parse(b, errors=errors) if isinstance(b, str) else b
    close = partial(_close, tolerance=tolerance, spread=max if precision == "coarser" else min)
    if isinstance(left, ErrorClaim) or isinstance(right, ErrorClaim):
        if not (isinstance(left, ErrorClaim) and isinstance(right, ErrorClaim)):
            return False
        return _same_error(left, right, close)
    return _same_elements(left.elements, right.elements, close)


def _same_error(a: ErrorClaim, b: ErrorClaim, close: _Close) -> bool:
    if a.type != b.type:
        return False
    if a.message is None or b.message is None:
        return True
    # A message cut short (torch's are long; options show their start) agrees with the whole.
    shorter, longer = sorted((a, b), key=lambda claim: len(claim.message or ()))
    head, whole = shorter.message or (), (longer.message or ())[: len(shorter.message or ())]
    if shorter.cut and head:
        # The last word may be cut mid-way ("weig…"), and a number cut short says nothing.
        last, other = head[-1], whole[-1]
        prefix = isinstance(last, Word) and isinstance(other, Word) and other.text.startswith(last.text)
        if not (prefix or isinstance(last, Num)):
            return False
        head, whole = head[:-1], whole[:-1]
    return _same_items(head, whole, close)


def _close(a: Num, b: Num, *, tolerance: float, spread: Callable[[float, float], float]) -> bool:
    if math.isnan(a.value) or math.isnan(b.value):
        return math.isnan(a.value) and math.isnan(b.value)
    if math.isinf(a.value) or math.isinf(b.value):
        return a.value == b.value
    slack = spread(a.spread, b.spread) + tolerance
    return abs(a.value - b.value) <= slack + 1e-12 * max(abs(a.value), abs(b.value), 1.0)


def _same_item(a: Item, b: Item, close: _Close) -> bool:
    if isinstance(a, Num) and isinstance(b, Num):
        return close(a, b)
    if isinstance(a, Seq) and isinstance(b, Seq):
        return _same_elements(a.elements, b.elements, close)
    return a == b


def _same_items(a: tuple[Item, ...], b: tuple[Item, ...], close: _Close) -> bool:
    return len(a) == len(b) and all(_same_item(x, y, close) for x, y in zip(a, b, strict=True))


def _same_elements(a: tuple[tuple[Item, ...], ...], b: tuple[tuple[Item, ...], ...], close: _Close) -> bool:
    gap_a, gap_b = _gap(a), _gap(b)
    if (gap_a is None) == (gap_b is None):
        return len(a) == len(b) and all(_same_items(x, y, close) for x, y in zip(a, b, strict=True))
    # One side leaves elements out with `...`: its elements before and after must match the other's ends.
    short, full, gap = (a, b, gap_a) if gap_a is not None else (b, a, gap_b)
    assert gap is not None
    head, tail = short[:gap], short[gap + 1 :]
    if len(head) + len(tail) > len(full):
        return False
    return all(_same_items(x, y, close) for x, y in zip(head, full[: len(head)], strict=True)) and all(
        _same_items(x, y, close) for x, y in zip(tail, full[len(full) - len(tail) :], strict=True)
    )


def _gap(elements: tuple[tuple[Item, ...], ...]) -> int | None:
    for index, element in enumerate(elements):
        if len(element) == 1 and type(element[0]) is Rest:
            return index
    return None


def number_of(text: str) -> float | None:
    """The number a text is (`0.269`, `tensor(2.3026)`, `approximately 3`), or None."""
    parsed = parse(text)
    if isinstance(parsed, Seq) and len(parsed.elements) == 1 and len(parsed.elements[0]) == 1:
        item = parsed.elements[0][0]
        if isinstance(item, Num):
            return item.value
    return None


def spread(text: str) -> float:
    """Half a unit of the last digit of a number as written ("3.349" → 0.0005); 0 for a whole number or no number."""
    parsed = parse(text)
    if isinstance(parsed, Seq) and len(parsed.elements) == 1 and len(parsed.elements[0]) == 1:
        item = parsed.elements[0][0]
        if isinstance(item, Num):
            return item.spread
    return 0.0


def numbers_in(text: str) -> set[float]:
    """Every number a text holds, read as the model reads them (not the digits inside names such as `conv2d`)."""
    found: set[float] = set()
    root = parse(text)  # read as a value: without `errors`, never an ErrorClaim
    pending: list[Item] = [] if isinstance(root, ErrorClaim) else [root]
    while pending:
        item = pending.pop()
        if isinstance(item, Num):
            found.add(item.value)
        elif isinstance(item, Seq):
            pending.extend(part for element in item.elements for part in element)
    return found


# --- spellings a learner may type ------------------------------------------------------------------------


def dims_of(answer: str | Answer) -> list[int] | None:
    """The whole numbers of a flat sequence (a shape), or None."""
    parsed = parse(answer) if isinstance(answer, str) else answer
    if not isinstance(parsed, Seq) or not parsed.elements:
        return None
    dims: list[int] = []
    for element in parsed.elements:
        if len(element) != 1 or not isinstance(element[0], Num):
            return None
        number = element[0]
        if number.spread or not number.value.is_integer() or math.isinf(number.value):
            return None
        dims.append(int(number.value))
    return dims


def spellings(text: str) -> list[str]:
    """The text, and for a shape the spellings a learner is likely to type, spaced and compact."""
    found = [text]
    dims = dims_of(text) if "[" in text or "(" in text else None
    if dims is not None:
        spaced, compact = ", ".join(map(str, dims)), ",".join(map(str, dims))
        tail = "," if len(dims) == 1 else ""
        found += [
            f"torch.Size([{spaced}])",
            f"({spaced}{tail})",
            f"[{spaced}]",
            f"torch.Size([{compact}])",
            f"({compact}{tail})",
            f"[{compact}]",
        ]
    return list(dict.fromkeys(found))
