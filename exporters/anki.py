"""Anki: a `.apkg` deck per bank, one note per variant (written with genanki).

Anki's import (26.9, checked): a note whose GUID is known is updated only when the incoming modification
time is strictly newer, otherwise skipped as a duplicate; a note type whose fields changed makes Anki skip
the notes as conflicting. So: note GUIDs come from variant ids, model and deck ids from the bank id, and a
change to the field list gets a new versioned note type (MODEL_VERSION). Notes carry the current time, or
SOURCE_DATE_EPOCH when set, for byte-identical builds (the zip's entry times are fixed as well).

Studying: Anki shows new cards of a deck in the order of their position (`due`), and its duplicate check looks at a
note's first field. So a bank is one deck whose new cards take turns between questions (first variant of every
question, then the second of every question, …) instead of one question's variants back to back, and the first field
(`Source`: bank, question and variant id) differs for every variant; the category is a tag and shown on the card.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Sequence
from html import escape
from itertools import count

import genanki

from qbank.errors import QbankError
from qbank.exporting import LETTERS, Exporter, Files, clock, style_sheet, templates, zip_bytes
from qbank.render import code_html, inline_html, markdown_html
from qbank.variant import BankInfo, Variant

#: Raise when FIELDS or the card templates change in a way Anki cannot update in place.
MODEL_VERSION = 3
#: The note type's fields, in order (documented in README). The first is what Anki checks for duplicates and sorts
#: the browser by: one per variant.
FIELDS = [
    "Source",
    "Question",
    "Code",
    "Choices",
    "Answer",
    "Explanation",
    "Hint",
    "Category",
    "Title",
    "Meta",
    # A short answer's first accepted spelling: the card asks for it with a type-in box ({{type:Typed}}).
    "Typed",
]


def stable_id(*parts: str) -> int:
    """An Anki model or deck id that depends only on `parts` (genanki's suggested range)."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return (1 << 30) + int(digest[:8], 16) % (1 << 30)


def build_time() -> float:
    """Now, or SOURCE_DATE_EPOCH for reproducible builds."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is None:
        return time.time()
    try:
        return float(int(epoch))
    except ValueError:
        raise QbankError(f"SOURCE_DATE_EPOCH must be a whole number of seconds, not {epoch!r}") from None


def tag(text: str) -> str:
    """Anki tags cannot contain spaces."""
    return "_".join(text.split())


_env = templates(autoescape=True)


def model(bank: BankInfo, cloze: bool = False) -> genanki.Model:
    """The note type: basic, or (for fill_in questions) a cloze type whose `Code` holds `{{c1::…}}` gaps. Both have
    the same fields and look; a cloze card's back repeats the front with the gaps filled instead of {{FrontSide}}."""
    front = _env.get_template("anki_front.html").render(code="cloze:Code" if cloze else "Code")
    back = _env.get_template("anki_back.html").render(front=front if cloze else "{{FrontSide}}")
    css = style_sheet() + _env.get_template("anki.css").render()
    kind = "cloze" if cloze else "model"
    return genanki.Model(
        stable_id(f"qbank-{kind}", str(MODEL_VERSION), bank.id),
        f"qbank v{MODEL_VERSION}{' cloze' if cloze else ''}: {bank.title}",
        fields=[{"name": name} for name in FIELDS],
        templates=[{"name": "Cloze" if cloze else "Question", "qfmt": front, "afmt": back}],
        css=css,
        model_type=genanki.Model.CLOZE if cloze else genanki.Model.FRONT_BACK,
    )


def _code_field(variant: Variant) -> str:
    """The Code field: highlighted code; a fill_in question's gaps as cloze deletions (`{{c1::16}}`), the value the
    code ran with in each (the back lists every value that works)."""
    if variant.gapped_code is not None:
        html = code_html(variant.gapped_code, classes=True)
        return variant.with_gaps(html, lambda number, blank: f"{{{{c{number}::{escape(blank.answers[0])}}}}}")
    return code_html(variant.shown_code, classes=True) if variant.shown_code else ""


def _choices_html(variant: Variant) -> str:
    if variant.pairs:  # a matching question: the items numbered, their matches lettered
        items = "".join(f"<li>{markdown_html(pair.item, True)}</li>" for pair in variant.pairs)
        matches = "".join(f'<li><code class="qb-code">{escape(m)}</code></li>' for m in variant.matches)
        return (
            f'<p class="qb-multi">Match each item to a letter.</p><ol class="qb-choices">{items}</ol>'
            f'<ol class="qb-choices" type="A">{matches}</ol>'
        )
    if variant.blocks:  # an ordering question: the blocks to put in order, lettered
        items = "".join(f"<li>{code_html(block, classes=True)}</li>" for block in variant.blocks)
        left_out = " Some do not belong: leave them out." if len(variant.orders[0]) < len(variant.blocks) else ""
        return f'<p class="qb-multi">Put the blocks in order.{left_out}</p><ol class="qb-choices" type="A">{items}</ol>'
    if not variant.choices:
        return ""
    items = "".join(f"<li>{inline_html(choice.text, True)}</li>" for choice in variant.choices)
    note = '<p class="qb-multi">Choose every correct answer.</p>' if variant.multiple_answers else ""
    return f'{note}<ol class="qb-choices" type="A">{items}</ol>'


def _answer_html(variant: Variant) -> str:
    if variant.pairs:
        rows = "".join(f'<li><code class="qb-code">{escape(pair.match)}</code></li>' for pair in variant.pairs)
        return f'<div class="qb-key">{escape(variant.key_text)}</div><ol class="qb-choices">{rows}</ol>'
    if variant.blocks:
        ordered = "\n".join(variant.blocks[index] for index in variant.orders[0])
        return f'<div class="qb-key">{escape(variant.key_text)}</div>{code_html(ordered, classes=True)}'
    if variant.choices:
        parts = []
        for index, choice in enumerate(variant.choices):
            if choice.correct:
                why = f'<div class="qb-why">{markdown_html(choice.feedback, True)}</div>' if choice.feedback else ""
                key = inline_html(choice.text, True)
                parts.append(f'<div class="qb-key"><b>{LETTERS[index]}.</b> {key}</div>{why}')
        wrong = [
            f"<li><b>{LETTERS[index]}</b>: {inline_html(choice.feedback, True)}</li>"
            for index, choice in enumerate(variant.choices)
            if not choice.correct and choice.feedback and variant.type == "multiple_choice"
        ]
        if wrong:
            parts.append(
                f'<details class="qb-others"><summary>Why not the others</summary><ul>{"".join(wrong)}</ul></details>'
            )
        return "".join(parts)
    key = f'<div class="qb-key">{inline_html(variant.key_text, True)}</div>'
    if len(variant.answers) > 1:
        others = ", ".join(f'<code class="qb-code">{escape(answer)}</code>' for answer in variant.answers[1:])
        key += f'<div class="qb-also">Also accepted: {others}</div>'
    return key


def note(bank: BankInfo, variant: Variant, note_model: genanki.Model, position: int = 0) -> genanki.Note:
    meta = f"{variant.difficulty} · {clock(variant.time_limit)}"
    # A revealed hint says what it is: Anki's {{hint:}} link disappears once clicked.
    hints = "".join(markdown_html(f"**Hint:** {hint}", True) for hint in variant.hints)
    fields = [
        escape(f"{bank.title} · {variant.question_id} · {variant.variant_id}"),
        markdown_html(variant.stem, True),
        _code_field(variant),
        _choices_html(variant),
        _answer_html(variant),
        markdown_html(variant.explanation, True),
        hints,
        escape(variant.category),
        escape(variant.title),
        escape(meta),
        escape(variant.answers[0]) if variant.type == "short_answer" else "",
    ]
    tags = [
        tag(variant.category),
        tag(variant.difficulty),
        f"qbank::{tag(bank.id)}",
        *(tag(t) for t in variant.tags),
    ]
    return genanki.Note(
        model=note_model,
        fields=fields,
        guid=genanki.guid_for("qbank", bank.id, variant.variant_id),
        tags=list(dict.fromkeys(tags)),
        due=position,
    )


def package_bytes(decks: list[genanki.Deck], timestamp: float) -> bytes:
    """The .apkg as bytes, with fixed zip entry times so equal input gives equal bytes."""
    package = genanki.Package(decks)
    # An in-memory database: no temporary file to clean up, nothing that a full /tmp can break.
    connection = sqlite3.connect(":memory:")
    try:
        package.write_to_db(connection.cursor(), timestamp, count(int(timestamp * 1000)))
        connection.commit()
        collection = connection.serialize()
    finally:
        connection.close()
    return zip_bytes({"collection.anki2": collection, "media": b"{}"})


class AnkiExporter(Exporter):
    name = "anki"
    description = "an Anki deck (.apkg): subdecks per category; re-importing updates notes in place"
    suffix = ".apkg"

    def render(self, bank: BankInfo, variants: Sequence[Variant], seed: int) -> Files:
        basic, cloze = model(bank), model(bank, cloze=True)
        deck = genanki.Deck(stable_id("qbank-deck", bank.id), bank.title, description=_deck_description(bank))
        for variant, position in zip(variants, study_order(variants), strict=True):
            deck.add_note(note(bank, variant, cloze if variant.type == "fill_in" else basic, position))
        return {f"{bank.id}{self.suffix}": package_bytes([deck], build_time())}


def study_order(variants: Sequence[Variant]) -> list[int]:
    """Each variant's position among new cards: questions take turns (the first variant of each question in bank
    order, then the second of each, …), so a study session mixes questions from its first cards."""
    seen: dict[tuple[str, str], int] = {}
    questions: dict[tuple[str, str], int] = {}
    keys = []
    for variant in variants:
        question = (variant.bank_id, variant.question_id)
        questions.setdefault(question, len(questions))
        round_ = seen.get(question, 0)
        seen[question] = round_ + 1
        keys.append((round_, questions[question]))
    ranked = sorted(range(len(variants)), key=keys.__getitem__)
    positions = [0] * len(variants)
    for position, index in enumerate(ranked):
        positions[index] = position
    return positions


def _deck_description(bank: BankInfo) -> str:
    text = escape(bank.description)
    if bank.badge:
        text += f"<br>Get every card right to earn the <b>{escape(bank.badge)}</b>."
    return text
