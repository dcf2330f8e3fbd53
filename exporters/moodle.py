"""Moodle XML: one category per question holding all its variants, for "random question" quizzes.

Spec: https://docs.moodle.org/en/Moodle_XML_format — checked against Moodle 4.5's importer:
fractions must come from Moodle's fixed list (else the whole import stops), a question gives
(number of <hint>s + 1) tries in interactive mode, each extra try costing <penalty>; text is HTML in
CDATA, and a `]]>` inside it is split across two CDATA sections.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from qbank.exporting import Exporter, Files, clock, question_html, templates, xml_refusal
from qbank.render import code_html, inline_html, markdown_html
from qbank.variant import BankInfo, BlankKey, Choice, Variant

#: Moodle's grade fractions for k correct answers out of a multiple-answer question (k = 1..10).
FRACTIONS = {
    1: "100",
    2: "50",
    3: "33.33333",
    4: "25",
    5: "20",
    6: "16.66667",
    7: "14.28571",
    8: "12.5",
    9: "11.11111",
    10: "10",
}
MAX_NAME = 255
MAX_IDNUMBER = 100


def cdata(text: str) -> Markup:
    """Text in a CDATA section; `]]>` inside it is split so the section cannot end early."""
    return Markup("<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>")


def category_path(*names: str) -> str:
    """A Moodle category path; a slash inside a name is written twice, as Moodle expects."""
    return "/".join(["$course$", "top", *(name.replace("/", "//") for name in names)])


@dataclass(frozen=True)
class _Answer:
    fraction: str
    html: str
    feedback: str


@dataclass(frozen=True)
class _Question:
    variant: Variant
    moodle_type: str
    name: str
    idnumber: str
    text: str
    general_feedback: str
    penalty: str
    hints: list[str]
    answers: list[_Answer]
    tags: list[str]


def _hints(variant: Variant) -> tuple[list[str], str]:
    """One hint per extra try (Moodle allows hints + 1 tries) and the general feedback.

    Hints beyond the tries join the last one; with a single try there is no retry to show a hint in,
    so the hints go into the general feedback instead of being lost.
    """
    general = markdown_html(variant.explanation)
    tries = variant.attempts - 1
    if tries == 0:
        if variant.hints:
            general += "".join(markdown_html(f"**Hint:** {hint}") for hint in variant.hints)
        return [], general
    given = list(variant.hints) or ["Not quite: read the question again and try once more."]
    hints = [markdown_html(given[min(i, len(given) - 1)]) for i in range(tries)]
    if len(given) > tries:
        hints[-1] = "".join(markdown_html(hint) for hint in given[tries - 1 :])
    return hints, general


def _choice_answers(variant: Variant) -> list[_Answer]:
    correct = variant.correct_choices
    wrong = len(variant.choices) - len(correct)

    def fraction(choice: Choice) -> str:
        if not variant.multiple_answers:
            return "100" if choice.correct else "0"
        return FRACTIONS[len(correct)] if choice.correct else "-" + FRACTIONS[wrong]

    return [
        _Answer(fraction(c), inline_html(c.text), markdown_html(c.feedback) if c.feedback else "")
        for c in variant.choices
    ]


#: What Moodle's Cloze parser (qtype_multianswer's ANSWER_REGEX) would read as the end of an answer — `~`, `#`, `}` —
#: written as character references: the parser skips a `#` after `&`, and decodes the entities once it has split
#: the answers. A `*` (a wildcard in a short answer) is written `\*`.
_CLOZE_ENTITIES = {"#": "&#35;", "}": "&#125;", "~": "&#126;"}


def _cloze(number: int, blank: BlankKey) -> str:
    """A blank as a Cloze short-answer subquestion accepting every value that works (all full marks)."""

    def answer(text: str) -> str:
        escaped = html.escape(text, quote=False)
        return "".join(_CLOZE_ENTITIES.get(char, char) for char in escaped).replace("*", "\\*")

    return "{1:SHORTANSWER:" + "~".join("%100%" + answer(a) for a in blank.answers) + "}"


def _question(bank: BankInfo, variant: Variant) -> _Question:
    text = question_html(variant)
    hints, general = _hints(variant)
    if variant.type == "multiple_choice":
        moodle_type, answers = "multichoice", _choice_answers(variant)
    elif variant.type == "true_false":
        moodle_type = "truefalse"
        truth = next(c.text == "True" for c in variant.choices if c.correct)
        answers = [
            _Answer("100" if truth else "0", "true", ""),
            _Answer("0" if truth else "100", "false", ""),
        ]
    elif variant.type == "numeric":
        moodle_type, answers = "numerical", [_Answer("100", variant.answers[0], "")]
    elif variant.type == "matching":
        # Moodle's Matching question: each item a subquestion whose answer is its match.
        moodle_type = "match"
        answers = [_Answer("", markdown_html(pair.item), pair.match) for pair in variant.pairs]
    elif variant.type == "ordering":
        # Moodle's Ordering question: the blocks in their right order, each answer's fraction its position.
        moodle_type = "ordering"
        blocks = [variant.blocks[index] for index in variant.orders[0]]
        answers = [_Answer(f"{n}.0000000", code_html(block), "") for n, block in enumerate(blocks, start=1)]
    elif variant.type == "fill_in":
        # Moodle's Cloze (`multianswer`): each blank is a SHORTANSWER subquestion written in the text itself.
        moodle_type, answers = "multianswer", []
        text = question_html(variant, _cloze)
    else:
        # In a Moodle short answer `*` is a wildcard; a literal one is written \*.
        moodle_type = "shortanswer"
        answers = [_Answer("100", answer.replace("*", "\\*"), "") for answer in variant.answers]
    name = f"{variant.title} · {variant.variant_id[:8]}"
    if len(name) > MAX_NAME:
        name = name[: MAX_NAME - 11] + "… " + variant.variant_id[:8]
    return _Question(
        variant=variant,
        moodle_type=moodle_type,
        name=name,
        idnumber=idnumber(bank, variant),
        text=text,
        general_feedback=general,
        penalty=f"{1 / variant.attempts:.7f}",
        hints=hints,
        answers=answers,
        tags=question_tags(variant),
    )


def idnumber(bank: BankInfo, variant: Variant) -> str:
    """A variant's Moodle idnumber: bank, question and variant id (its end, if longer than Moodle keeps)."""
    return f"{bank.id}:{variant.question_id}:{variant.variant_id}"[-MAX_IDNUMBER:]


def question_tags(variant: Variant) -> list[str]:
    """A variant's Moodle tags: category, difficulty, time limit and the topic tags."""
    tags = [variant.category, variant.difficulty, f"time {clock(variant.time_limit)}", *variant.tags]
    return list(dict.fromkeys(tags))


_env = templates(autoescape=True, cdata=cdata)


class MoodleExporter(Exporter):
    name = "moodle"
    description = "Moodle XML: one category per question holding its variants (Question bank → Import)"
    suffix = ".moodle.xml"

    def refusal(self, variant: Variant) -> str | None:
        reasons = []
        if variant.orders:
            # Moodle's Ordering question knows one right order, uses every item, and scores two equal items wrongly.
            if len(variant.orders) > 1:
                reasons.append(
                    f"{len(variant.orders)} orders of its blocks give the outcome, and Moodle's Ordering question "
                    "accepts one (set order.unique = true to find such variants, and change the code or add a "
                    "constraint)"
                )
            if len(variant.orders[0]) < len(variant.blocks):
                reasons.append(
                    "it has blocks to leave out, and Moodle's Ordering question uses every block (drop "
                    "order.distractors for Moodle)"
                )
            texts = [block.strip() for block in variant.blocks]
            twice = next((text for text in texts if texts.count(text) > 1), None)
            if twice is not None:
                reasons.append(f"the block {twice!r} is there twice, and Moodle's Ordering question needs unique items")
        # An empty answer ends Moodle's Matching import silently, losing every later question of the file.
        empty = next((pair.item for pair in variant.pairs if not pair.match.strip()), None)
        if empty is not None:
            reasons.append(f"the item {empty!r} matches an empty outcome, which Moodle's Matching import cannot take")
        unfit = xml_refusal(variant)
        return "; ".join([*reasons, unfit] if unfit else reasons) or None

    def render(self, bank: BankInfo, variants: Sequence[Variant], seed: int) -> Files:
        groups: dict[str, list[_Question]] = {}
        titles: dict[str, str] = {}
        for variant in variants:
            groups.setdefault(variant.question_id, []).append(_question(bank, variant))
            titles.setdefault(variant.question_id, variant.title)
        categories = [
            {
                "path": category_path(bank.title, f"{titles[qid]} ({qid})"),
                "idnumber": f"{bank.id}:{qid}",
                "questions": questions,
            }
            for qid, questions in groups.items()
        ]
        text = _env.get_template("moodle.xml.j2").render(bank=bank, categories=categories, seed=seed)
        return {f"{bank.id}{self.suffix}": text}
