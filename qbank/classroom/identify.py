"""Finding the variant a student was given, and the option they chose, from what a report shows.

An LMS report does not name qbank's variants: Moodle's Responses report shows each question as a plain-text summary
(stem and code flattened, `<strong>` in capitals, non-breaking spaces, and for a choice question `: A; B; C; D` in the
student's shuffled order), Canvas's Student Analysis the question's text in its header. Both are compared with every
variant's question as the LMS formats write it, word by word: the runs of letters and digits, case-blind, so that
spacing, punctuation, markup and line breaks do not matter and every number does. A text that fits no variant, or
several, is reported, never guessed.
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qbank import answers, display
from qbank.exporting import LETTERS, question_html
from qbank.render import inline_html
from qbank.variant import Variant

Tokens = tuple[str, ...]


def tokens(text: str) -> Tokens:
    """The words and numbers of a text, case-blind: what every flattening of it keeps."""
    return tuple(re.findall(r"[^\W_]+", text.casefold()))


def plain_text(fragment: str) -> str:
    """The text of an HTML fragment (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


def option_tokens(variant: Variant) -> list[Tokens]:
    """Each option of a choice question as an LMS shows it, word by word."""
    return [tokens(plain_text(inline_html(choice.text))) for choice in variant.choices]


def _question_renderings(variant: Variant) -> list[Tokens]:
    """A variant's question (category line, stem, code) as each LMS format writes it, word by word: a fill_in
    question's gaps as Moodle's Cloze summary numbers them (`{#1}`), as Canvas names them (`[gap1]`), and empty."""
    if variant.gapped_code is None:
        return [tokens(plain_text(question_html(variant)))]
    gaps = (lambda number, _: f"{{#{number}}}", lambda number, _: f"[gap{number}]", lambda number, _: " ")
    return list(dict.fromkeys(tokens(plain_text(question_html(variant, gap))) for gap in gaps))


@dataclass(frozen=True)
class Found:
    """What a question text was found to be: its variant, and for a choice question the order of the options in the
    summary (positions in `variant.choices`), when the summary lists them. `exact`: the text shows the variant's
    options (if any) and nothing else; otherwise the question matched but what follows it did not (its options
    were others: another version of qbank or of the bank made them)."""

    variant: Variant
    shown_order: tuple[int, ...] | None = None
    exact: bool = True


class Finder:
    """Every variant of the quiz, looked up by the question text a report shows."""

    def __init__(self, variants: Iterable[Variant]) -> None:
        self.variants = list(variants)
        #: By the length of a rendering, then the rendering itself: a summary's first words are looked up directly.
        self._by_length: dict[int, dict[Tokens, list[Variant]]] = {}
        for variant in self.variants:
            for rendering in _question_renderings(variant):
                same = self._by_length.setdefault(len(rendering), {}).setdefault(rendering, [])
                if variant not in same:
                    same.append(variant)
        self._options = {id(variant): option_tokens(variant) for variant in self.variants}
        #: By the whole rendering's letters and digits run together: for texts whose tags were dropped without a
        #: space (Canvas's `strip_tags` turns `2:00</p><p>A batch` into `2:00A batch`).
        self._joined: dict[str, list[tuple[Tokens, Variant]]] = {}
        for variant in self.variants:
            for rendering in _question_renderings(variant):
                self._joined.setdefault("".join(rendering), []).append((rendering, variant))

    def find(self, text: str) -> list[Found]:
        """Every variant whose question the text shows (followed, for a choice question, by its options in some
        order): one when the text identifies its variant, none or several otherwise."""
        words = tokens(text)
        found: list[Found] = []
        for length, renderings in self._by_length.items():
            for variant in renderings.get(words[:length], []):
                rest = words[length:]
                if not rest:
                    found.append(Found(variant))
                    continue
                order = _options_in_order(rest, self._options[id(variant)])
                found.append(Found(variant, order) if order is not None else Found(variant, exact=False))
        unique: dict[int, Found] = {}
        for f in found:  # a variant found by two renderings is one, exactly if either is exact
            if id(f.variant) not in unique or f.exact:
                unique[id(f.variant)] = f
        exact = [f for f in unique.values() if f.exact]
        if exact or unique:
            return exact or list(unique.values())
        merged = {
            id(variant): Found(variant)
            for rendering, variant in self._joined.get("".join(words), [])
            if _merged_from(words, rendering)
        }
        return list(merged.values())

    def resembling(self, text: str, least: float = 0.6) -> Variant | None:
        """The variant whose question the text most resembles, word for word, if at least `least` alike (difflib's
        ratio): a question of the banks with other numbers, as another seed makes; None for another question."""
        words = tokens(text)
        best, ratio = None, least
        for renderings in self._by_length.values():
            for rendering, variants in renderings.items():
                matcher = difflib.SequenceMatcher(None, words[: len(rendering)], rendering, autojunk=False)
                if matcher.quick_ratio() >= ratio and matcher.ratio() >= ratio:
                    best, ratio = variants[0], matcher.ratio()
        return best

    def options(self, variant: Variant) -> list[Tokens]:
        return self._options.get(id(variant)) or option_tokens(variant)


def _merged_from(words: Tokens, rendering: Tokens) -> bool:
    """Whether `words` are `rendering` with some neighbours run together (where a tag stood between them), and
    nothing else changed: each word is one or more consecutive words of the rendering."""
    at = 0
    for word in words:
        joined = ""
        while at < len(rendering) and len(joined) < len(word):
            joined += rendering[at]
            at += 1
        if joined != word:
            return False
    return at == len(rendering)


def _options_in_order(rest: Tokens, options: Sequence[Tokens]) -> tuple[int, ...] | None:
    """The order in which `rest` lists every option once (Moodle: `: A; B; C; D`), or None if it does not."""

    def walk(at: int, left: frozenset[int]) -> tuple[int, ...] | None:
        if not left:
            return () if at == len(rest) else None
        for index in sorted(left):
            option = options[index]
            if option and rest[at : at + len(option)] == option:
                after = walk(at + len(option), left - {index})
                if after is not None:
                    return (index, *after)
        return None

    return walk(0, frozenset(range(len(options))))


# --- what was answered ----------------------------------------------------------------------------------------

_TRUE = {"true", "wahr", "richtig", "vrai", "verdadero", "vero"}
_FALSE = {"false", "falsch", "faux", "falso"}


def chosen_options(variant: Variant, answer: str, options: Sequence[Tokens], separator: str = "; ") -> list[int] | None:
    """The options an LMS wrote as chosen (their texts; several joined by `separator`): their positions, or None if
    some text is none of the options. Exact words first, then by meaning (`qbank.answers`)."""
    if variant.type == "true_false":
        word = answer.strip().casefold()
        wanted = "True" if word in _TRUE else "False" if word in _FALSE else None
        picked = [index for index, choice in enumerate(variant.choices) if choice.text == wanted]
        return picked or None
    parts = [answer] if not variant.multiple_answers else _split(answer, separator)
    chosen: list[int] = []
    for part in parts:
        words = tokens(part)
        exact = [index for index, option in enumerate(options) if option == words]
        if len(exact) != 1:
            errors = variant.about_errors
            exact = [
                index
                for index, choice in enumerate(variant.choices)
                if answers.same(part, display.plain_of(choice.text), errors=errors)
            ]
        if len(exact) != 1:
            return None
        chosen.append(exact[0])
    return sorted(set(chosen))


def _split(answer: str, separator: str) -> list[str]:
    """Texts joined by `separator`; Canvas writes a comma inside a text as `\\,`."""
    if separator == ",":
        return [part.replace("\\,", ",").strip() for part in re.split(r"(?<!\\),", answer) if part.strip()]
    return [part.strip() for part in answer.split(separator) if part.strip()]


def as_letters(indices: Sequence[int]) -> str:
    """Options by their letters, as `qbank grade` reads them (`B`, `A, C`)."""
    return ", ".join(LETTERS[index] for index in indices)
