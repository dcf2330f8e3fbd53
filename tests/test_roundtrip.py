"""Hostile text round-trips through every exporter: each export is parsed back and compared exactly.

Text fields are Markdown, so what must survive is what qbank renders from them (the same HTML in every
HTML-speaking format); code, titles and accepted answers must survive character for character.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree
from markdown_it import MarkdownIt
from qbank.exporters import gift, markdown, moodle, qti
from qbank.exporters import html as html_exporter
from qbank.exporters.json import Document, JsonExporter

from qbank.render import code_html, inline_html, markdown_html
from qbank.variant import BankInfo, Choice, Variant

from .test_gift_qti import parse_gift

HOSTILE = [
    "]]>",
    "<script>alert(1)</script>",
    "&amp;",
    "&",
    "<",
    ">",
    "{{",
    "}}",
    "~",
    "=",
    "#",
    "{",
    "}",
    ":",
    "\\",
    "$x$",
    "`",
    "<int, int>",
    "a<b",
    "\n",
    "  ",
    "'",
    '"',
    "*",
    "_",
    "[",
    "]",
    "(",
    ")",
    "---",
]
characters = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
fragments = st.one_of(st.sampled_from(HOSTILE), st.text(characters, min_size=1, max_size=6))
texts = st.lists(fragments, min_size=1, max_size=8).map("".join).filter(lambda s: s.strip() != "")
lines = st.lists(st.lists(fragments.filter(lambda s: "\n" not in s), max_size=6).map("".join), min_size=1, max_size=4)


@st.composite
def variants(draw: st.DrawFn) -> Variant:
    count = draw(st.integers(2, 4))
    options = draw(st.lists(texts, min_size=count, max_size=count, unique_by=lambda s: inline_html(s)))
    right = draw(st.integers(0, count - 1))
    code = draw(st.one_of(st.none(), lines.map("\n".join)))
    return Variant(
        bank_id="hostile",
        question_id="q",
        variant_id=draw(st.from_regex(r"[0-9a-f]{16}", fullmatch=True)),
        params={},
        title=draw(texts.filter(lambda s: "\n" not in s)),
        category="Debug",
        type="multiple_choice",
        difficulty="expert",
        time_limit=90,
        attempts=draw(st.integers(1, 3)),
        stem=draw(texts),
        code=code,
        choices=[Choice(text=t, correct=i == right, feedback=draw(texts)) for i, t in enumerate(options)],
        hint=None,
        hints=draw(st.lists(texts, max_size=2)),
        explanation=draw(texts),
        tags=["edge"],
    )


BANK = BankInfo(id="hostile", title="Hostile <b>]]> & {x}", description="a<b & ]]>", badge="B<a>dge")
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def shown(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


@FAST
@given(variants())
def test_json(variant: Variant) -> None:
    (text,) = JsonExporter().export(BANK, [variant], 3).values()
    assert Document.model_validate_json(text).variants == [variant]


@FAST
@given(variants())
def test_moodle(variant: Variant) -> None:
    (text,) = moodle.MoodleExporter().export(BANK, [variant], 3).values()
    root = etree.fromstring(text.encode())
    (question,) = root.findall("question[@type='multichoice']")
    assert question.findtext("name/text") == f"{variant.title} · {variant.variant_id[:8]}"
    body = question.findtext("questiontext/text")
    assert markdown_html(variant.stem) in body
    if variant.code:
        assert code_html(variant.code) in body
        assert shown(code_html(variant.code)) == variant.code.rstrip("\n")
    answers = question.findall("answer")
    assert [a.findtext("text") for a in answers] == [inline_html(c.text) for c in variant.choices]
    assert [a.findtext("feedback/text") for a in answers] == [markdown_html(c.feedback) for c in variant.choices]
    assert question.findtext("generalfeedback/text").startswith(markdown_html(variant.explanation))


@FAST
@given(variants())
def test_gift(variant: Variant) -> None:
    (text,) = gift.GiftExporter().export(BANK, [variant], 3).values()
    (question,) = parse_gift(text)
    assert question["title"] == f"{variant.title} · {variant.variant_id[:8]}"
    assert question["text"] == gift._question_html(variant)
    expected = [
        ("=" if c.correct else "~") + gift.escape(inline_html(c.text)) + "#" + gift.escape(markdown_html(c.feedback))
        for c in variant.choices
    ]
    assert question["answers"] == expected
    assert question["general"] == gift._general_feedback(variant)


@FAST
@given(variants())
def test_qti(variant: Variant) -> None:
    (data,) = qti.QtiExporter().export(BANK, [variant], 3).values()
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".xml") and "/" in n and "meta" not in n)
        root = etree.fromstring(archive.read(name))
    ns = {"q": "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"}
    (item,) = root.findall(".//q:item", ns)
    assert item.findtext("q:presentation/q:material/q:mattext", namespaces=ns) == qti._item(variant).html
    labels = item.findall(".//q:response_label/q:material/q:mattext", ns)
    assert [label.text for label in labels] == [inline_html(c.text) for c in variant.choices]


@FAST
@given(variants())
def test_markdown(variant: Variant) -> None:
    files = markdown.MarkdownExporter().export(BANK, [variant], 3)
    parsed = MarkdownIt("commonmark").parse(files["hostile.md"])
    headings = [parsed[i + 1] for i, t in enumerate(parsed) if t.type == "heading_open" and t.tag == "h2"]
    rendered = "".join(child.content for child in headings[0].children or [])
    assert rendered == "1. " + " ".join(variant.title.split())
    fences = [t.content for t in parsed if t.type == "fence" and t.info == "python"]
    if variant.code:
        assert variant.code.rstrip("\n") + "\n" in fences


@FAST
@given(variants())
def test_html(variant: Variant) -> None:
    (page,) = html_exporter.HtmlExporter().export(BANK, [variant], 3).values()
    match = re.search(r'<script type="application/json" id="qbank-data">(.*?)</script>', page, flags=re.S)
    assert match and "<" not in match.group(1)
    data = json.loads(match.group(1))
    assert data["problems"] == [[html_exporter._problem(variant)]]
    assert data["title"] == BANK.title
    without_data = page.replace(match.group(0), "")
    assert "<script>alert" not in without_data
    assert page.count("<script") == 3  # the theme, the data, the code


def test_xml_formats_refuse_characters_xml_cannot_carry(tmp_path: Path) -> None:
    from qbank.exporting import ExportRefused

    variant = Variant(
        bank_id="b",
        question_id="control",
        variant_id="0" * 16,
        params={},
        title="t",
        category="Debug",
        type="short_answer",
        difficulty="expert",
        time_limit=10,
        attempts=1,
        stem="bell \x07 here",
        code=None,
        answers=["a"],
        explanation="e",
    )
    for exporter in (moodle.MoodleExporter(), qti.QtiExporter()):
        with pytest.raises(ExportRefused, match=r"control.*U\+0007"):
            exporter.export(BANK, [variant], 1)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(variant=variants())
def test_anki(tmp_path_factory: pytest.TempPathFactory, variant: Variant) -> None:
    from anki.collection import Collection, ImportAnkiPackageOptions, ImportAnkiPackageRequest
    from qbank.exporters import anki

    folder = tmp_path_factory.mktemp("anki")
    (data,) = anki.AnkiExporter().export(BANK, [variant], 3).values()
    (folder / "deck.apkg").write_bytes(data)
    collection = Collection(str(folder / "collection.anki2"))
    try:
        request = ImportAnkiPackageRequest(package_path=str(folder / "deck.apkg"), options=ImportAnkiPackageOptions())
        assert len(collection.import_anki_package(request).log.new) == 1
        note = collection.get_note(collection.find_notes("")[0])
        # Anki keeps field text in Unicode NFC (U+F900 is stored as U+8C48): compare with that.
        assert note["Question"] == nfc(markdown_html(variant.stem, True))
        assert note["Code"] == nfc(code_html(variant.code, classes=True) if variant.code else "")
        assert shown(note["Title"]) == nfc(variant.title)
        card = note.cards()[0]
        assert "template has a problem" not in card.question()
        if variant.code:
            assert variant.code.rstrip("\n") in shown(card.question())
    finally:
        collection.close()


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "x",
                    " ",
                    "1",
                    "0.5",
                    "torch.randn(",
                    ")",
                    ",",
                    "'",
                    '"',
                    "#",
                    "h_0",
                    "conv1d",
                    "1e-3",
                    "0x1F",
                    "=",
                    "[",
                    "]",
                    ":",
                    "<",
                    "&",
                    "def",
                    "9_000",
                ]
            ),
            st.text(characters, max_size=3),
        ),
        max_size=12,
    ).map("".join)
)
@example("'\\")  # a backslash ending an unclosed string: the lexer's added newline joins its token
def test_highlighting_by_line_shape_equals_lexing_each_line(line: str) -> None:
    from qbank.render import _python, _python_line, lexed_lines, merged

    line = line.replace("\n", " ")
    assert merged(_python_line(line)) == merged(lexed_lines(line, _python)[0] if line else [])
    assert shown(code_html(line)) == line.rstrip("\n")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab {}%#\n\r\t-+<>'\"\\é")), max_size=40))
def test_text_without_jinja_syntax_renders_as_jinja_renders_it(text: str) -> None:
    from qbank.templating import _template, render

    try:
        expected = _template(text).render()
    except Exception:  # not a valid template: render must say so the same way
        expected = None
    if expected is None:
        with pytest.raises(Exception):  # noqa: B017 - the template error class is not the point here
            render(text, {})
    else:
        assert render(text, {}) == expected
