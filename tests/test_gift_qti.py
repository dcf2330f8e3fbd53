"""GIFT read back by a GIFT parser's rules; QTI parsed and checked against what Canvas reads."""

from __future__ import annotations

import html
import re
import zipfile
from pathlib import Path

from lxml import etree

import qbank
from qbank.generate import Generation
from qbank.render import inline_html

# --- GIFT --------------------------------------------------------------------------------------

# Moodle's GIFT importer reads only these escapes; any other backslash stays (`\*` is a literal star in a short answer).
_UNESCAPE = re.compile(r"\\([\\~=#{}:n])")


def gift_unescape(text: str) -> str:
    return _UNESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def split_unescaped(text: str, marks: str) -> list[str]:
    """Split at marks not preceded by a backslash escape, keeping each mark at the start of its part."""
    parts, start, i = [], 0, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] in marks and i > start:
            parts.append(text[start:i])
            start = i
        i += 1
    parts.append(text[start:])
    return parts


def parse_gift(text: str) -> list[dict[str, object]]:
    """The questions of a GIFT file (title, text, answers), by the format's own rules."""
    questions = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.splitlines() if not line.startswith("//")]
        block = "\n".join(lines).strip()
        if not block or block.startswith("$CATEGORY:"):
            continue
        match = re.match(r"::((?:\\.|[^:\\])*)::\[html\]((?:\\.|[^{\\])*)\{(.*)\}\s*$", block, flags=re.S)
        assert match, block[:200]
        body, general = match.group(3), ""
        if "####" in body:
            body, general = body.split("####", 1)
        answers = [part.strip() for part in split_unescaped(body.strip(), "=~") if part.strip()]
        questions.append(
            {
                "title": gift_unescape(match.group(1)),
                "text": gift_unescape(match.group(2)),
                "answers": answers,
                "body": body.strip(),
                "general": gift_unescape(general.strip()),
            }
        )
    return questions


def shown(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def test_gift_round_trips_every_text(hostile: Generation, gru_50: Generation, tmp_path: Path) -> None:
    for result in (hostile, gru_50):
        qbank.export(result, ["gift"], tmp_path)
        parsed = parse_gift((tmp_path / f"{result.bank.id}.gift.txt").read_text())
        assert len(parsed) == len(result.variants)
        for question, variant in zip(parsed, result.variants, strict=True):
            assert question["title"] == f"{variant.title} · {variant.variant_id[:8]}"
            if variant.code:
                assert variant.code in shown(question["text"])
            assert shown(qbank.render.markdown_html(variant.explanation)) in shown(question["general"])
            if variant.type == "multiple_choice":
                rights = [a for a in question["answers"] if a.startswith("=")]
                assert len(rights) == 1
                right_text = gift_unescape(rights[0][1:].split("#")[0]) if "\\#" not in rights[0] else None
                if right_text is not None:
                    assert right_text == inline_html(variant.correct_choices[0].text)
            elif variant.type == "numeric":
                assert question["body"] == f"#{variant.answers[0]}:{variant.tolerance:g}"
            elif variant.type == "true_false":
                assert question["body"] in ("TRUE", "FALSE")
            else:
                typed = [gift_unescape(a[1:]) for a in question["answers"]]
                assert not any(re.search(r"(?<!\\)\*", answer) for answer in typed)  # no wildcard left
                assert [answer.replace("\\*", "*") for answer in typed] == variant.answers


# Moodle's GIFT import (qformat_gift::extract_idnumber_and_tags_from_comment), ported: an idnumber and any number of
# tags from the `//` lines of a question's block, `]` escaped as `\]`.
_GIFT_ID = re.compile(r"\[id:((?:\\\]|[^\]\[\x00-\x1f\x7f])+)\]")
_GIFT_TAG = re.compile(r"\[tag:((?:\\\]|[^\]<>\x00-\x1f\x7f])+)\]")


def test_gift_questions_carry_the_idnumber_and_tags_of_the_moodle_xml(gru_50: Generation, tmp_path: Path) -> None:
    qbank.export(gru_50, ["gift", "moodle"], tmp_path)
    tree = etree.parse(str(tmp_path / "gru_mastery.moodle.xml"))
    expected = [
        (q.findtext("idnumber"), [t.findtext("text") for t in q.iterfind("tags/tag")])
        for q in tree.iterfind("question")
        if q.get("type") != "category"
    ]
    found = []
    for block in re.split(r"\n\s*\n", (tmp_path / "gru_mastery.gift.txt").read_text()):
        comments = "\n".join(line.strip() for line in block.splitlines() if line.strip().startswith("//"))
        if "::" not in block.replace(comments, ""):
            continue  # the file's heading, a category
        identifier = _GIFT_ID.search(comments)
        assert identifier, block[:120]
        tags = [tag.strip().replace("\\]", "]") for tag in _GIFT_TAG.findall(comments)]
        found.append((identifier.group(1).strip(), tags))
    assert found == expected
    assert len({identifier for identifier, _ in found}) == len(gru_50.variants)
    for variant, (_, tags) in zip(gru_50.variants, found, strict=True):
        assert variant.category in tags and variant.difficulty in tags


def test_gift_escapes_every_special_character(hostile: Generation, tmp_path: Path) -> None:
    qbank.export(hostile, ["gift"], tmp_path)
    text = (tmp_path / "hostile.gift.txt").read_text()
    printed = next(v for v in hostile.variants if v.question_id == "printed_markup")
    raw_code_line = 'print(label, "a<b && c>d ]]> ~=#{}:'
    assert raw_code_line not in text
    assert r"\~\=\#\{\}\:" in text
    parsed = parse_gift(text)
    question = next(q for q in parsed if q["title"].startswith(printed.title))
    assert printed.code in shown(question["text"])


# --- QTI ---------------------------------------------------------------------------------------

NS = {"q": "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"}
CANVAS_TYPES = {
    "multiple_choice_question",
    "multiple_answers_question",
    "true_false_question",
    "short_answer_question",
    "numerical_question",
}


def qti(result: Generation, folder: Path) -> tuple[etree._Element, zipfile.ZipFile]:
    qbank.export(result, ["qti"], folder)
    archive = zipfile.ZipFile(folder / f"{result.bank.id}.qti.zip")
    manifest = etree.fromstring(archive.read("imsmanifest.xml"))
    hrefs = [f.get("href") for f in manifest.iter("{*}file")]
    assert all(href in archive.namelist() for href in hrefs)
    assessment_file = next(h for h in hrefs if not h.endswith("assessment_meta.xml"))
    return etree.fromstring(archive.read(assessment_file)), archive


def test_qti_has_one_group_per_question_drawing_one_variant(gru_50: Generation, tmp_path: Path) -> None:
    root, _ = qti(gru_50, tmp_path)
    groups = root.findall("q:assessment/q:section/q:section", NS)
    assert len(groups) == len(gru_50.bank.questions)
    for group in groups:
        assert group.findtext("q:selection_ordering/q:selection/q:selection_number", namespaces=NS) == "1"
    items = root.findall(".//q:item", NS)
    assert len(items) == len(gru_50.variants)
    idents = [item.get("ident") for item in items]
    assert len(set(idents)) == len(idents)
    assert all(re.fullmatch(r"[A-Za-z_][\w.-]*", i) for i in idents)


def test_qti_response_processing_scores_the_key(gru_50: Generation, hostile: Generation, tmp_path: Path) -> None:
    for result in (gru_50, hostile):
        root, _ = qti(result, tmp_path / result.bank.id)
        by_title = {v.variant_id[:8]: v for v in result.variants}
        for item in root.findall(".//q:item", NS):
            variant = by_title[item.get("title").rsplit(" · ", 1)[1]]
            fields = {
                f.findtext("q:fieldlabel", namespaces=NS): f.findtext("q:fieldentry", namespaces=NS)
                for f in item.findall(".//q:qtimetadatafield", NS)
            }
            assert fields["question_type"] in CANVAS_TYPES
            scoring = [c for c in item.findall(".//q:respcondition", NS) if c.find("q:setvar", NS) is not None]
            assert len(scoring) == 1
            assert scoring[0].findtext("q:setvar", namespaces=NS) == "100"
            labels = [label.get("ident") for label in item.findall(".//q:response_label", NS)]
            if variant.choices and not variant.multiple_answers:
                (wanted,) = [i for i, c in enumerate(variant.choices) if c.correct]
                assert scoring[0].findtext("q:conditionvar/q:varequal", namespaces=NS) == labels[wanted]
            elif variant.type == "numeric":
                low = float(scoring[0].findtext(".//q:vargte", namespaces=NS))
                high = float(scoring[0].findtext(".//q:varlte", namespaces=NS))
                assert low <= float(variant.answers[0]) <= high
            elif variant.type == "short_answer":
                accepted = [v.text for v in scoring[0].findall(".//q:varequal", NS)]
                assert accepted == variant.answers
            text = item.findtext("q:presentation/q:material/q:mattext", namespaces=NS)
            if variant.code:
                assert variant.code.rstrip("\n") in shown(text)
