"""Load a bank from a file, a built-in id or a dict, and turn every problem into one located paragraph."""

from __future__ import annotations

import difflib
import re
import stat
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from qbank import answers, models
from qbank.errors import BankError
from qbank.params import sample
from qbank.precheck import precheck
from qbank.templating import TemplateProblem, unknown_names

MAX_BANK_BYTES = 5 * 1024 * 1024


def builtin_banks() -> dict[str, Path]:
    """Built-in bank ids and their files, shipped inside the package."""
    folder = resources.files("qbank.banks")
    found: dict[str, Path] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".toml"):
            found[entry.name.removesuffix(".toml")] = Path(str(entry))
    return dict(sorted(found.items()))


def resolve(name: str) -> Path:
    """A bank named by path or by built-in id (a folder of that name, such as an output folder, does not hide it)."""
    path = Path(name)
    banks = builtin_banks()
    if name in banks and not path.is_file():
        return banks[name]
    if path.suffix == ".toml" or path.exists() or "/" in name or "\\" in name:
        if not path.exists():
            raise BankError("no such file", file=name)
        if path.is_dir():
            raise BankError("is a folder, not a bank file", file=name)
        return path
    raise BankError(
        f"'{name}' is neither a bank file nor a built-in bank (built-in: {', '.join(banks)})"
        + _did_you_mean(name, banks)
    )


def load_bank(source: str | Path | Mapping[str, Any]) -> models.Bank:
    """Load and fully validate a bank: the model, then its templates and expressions."""
    if isinstance(source, Mapping):
        return validate_data(dict(source), file=None, text=None)
    path = resolve(str(source))
    display = str(source)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            # A device (/dev/zero never ends) or a pipe (may never be written to) is not a bank file.
            raise BankError("is not a regular file (a device, pipe or socket); give a bank file", file=display)
        with path.open("rb") as handle:
            raw = handle.read(MAX_BANK_BYTES + 1)  # the size on disk may be wrong (/proc) or change while read
        if len(raw) > MAX_BANK_BYTES:
            raise BankError(f"the file is larger than a bank may be (at most {MAX_BANK_BYTES:,} bytes)", file=display)
    except OSError as exc:
        raise BankError(f"cannot read the file: {exc.strerror}", file=display) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise BankError(
            f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8", file=display, line=line
        ) from None
    if not text.strip():
        raise BankError("the file is empty; a bank needs id, title and at least one question", file=display)
    try:
        data = tomllib.loads(text.removeprefix("\ufeff"))  # a byte-order mark some editors write is not content
    except RecursionError:
        raise BankError("this is not a bank: its tables or arrays are nested too deeply", file=display) from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        at_line = int(match.group(1)) if match else None
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", message) if match else message
        column = f", column {match.group(2)}" if match else ""
        raise BankError(f"this is not valid TOML{column}: {reason}", file=display, line=at_line) from None
    if not data:
        raise BankError(
            "the file is empty (only comments); a bank needs id, title and at least one question",
            file=display,
        )
    return validate_data(data, file=display, text=text)


def validate_data(data: dict[str, Any], *, file: str | None, text: str | None) -> models.Bank:
    try:
        bank = models.Bank.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, data, file, text) from None
    except RecursionError:
        raise BankError("this is not a bank: its values are nested too deeply", file=file) from None
    try:
        check_templates(bank)
        for question in bank.questions:
            sample(question, 1, 0, bank.id)  # constraints that no parameter values satisfy
            precheck(question, bank.id, bank.setup)  # rendered code that is not Python, names it cannot see
    except BankError as exc:
        line = exc.line or _find_line(text, exc.question, exc.field)
        raise BankError(exc.reason, file=file, line=line, question=exc.question, field=exc.field) from None
    return bank


# --- templates -----------------------------------------------------------------------------------


def check_templates(bank: models.Bank) -> None:
    """Every template parses and names only parameters the question declares."""
    for question in bank.questions:
        params = set(question.params)
        # A fill_in stem is rendered once the code has run, so it may name the `outcome` to reach.
        after_run = {"outcome"} if question.type in ("fill_in", "ordering") else set()
        fields: list[tuple[str, str, set[str], bool]] = [
            ("stem", question.stem, params | after_run, False),
            ("explanation", question.explanation, params | {"answer", "answer_type"} | after_run, False),
        ]
        if question.code:
            fields.append(("code", question.code, params | {"blank"}, False))
        if question.setup:
            fields.append(("setup.code", question.setup.code, params, False))
        if bank.setup:
            fields.append(("setup.code (of the bank)", bank.setup.code, params, False))
        fields += [(f"hints[{i}]", hint, params, False) for i, hint in enumerate(question.hints)]
        for i, item in enumerate(question.items):
            fields.append((f"items[{i}].code", item.code, params, False))
            if item.label:
                fields.append((f"items[{i}].label", item.label, params, False))
        fields += [(f"constraints[{i}]", c, params, True) for i, c in enumerate(question.constraints)]
        for i, choice in enumerate(question.choices):
            fields += [(f"choices[{i}].text", choice.text, params, False)]
            fields += [(f"choices[{i}].feedback", choice.feedback, params, False)]
        for i, distractor in enumerate(question.distractors):
            fields += [(f"distractors[{i}].text", distractor.text, params, False)]
            fields += [(f"distractors[{i}].feedback", distractor.feedback, params, False)]
        for i, distractor in enumerate(question.distractors):
            if distractor.when:
                fields.append((f"distractors[{i}].when", distractor.when, params, True))
        claim = getattr(question.answer, "claim", None)
        if isinstance(claim, str):
            fields.append(("answer.claim", claim, params, False))
        if claim is not None:
            _check_claim(question, claim)
        if isinstance(question.answer, models.ValueAnswer):
            _check_python(question.answer.expression, question.id, "answer.expression")
        for i, mistake in enumerate(question.mistakes):
            where = f"mistakes[{i}]"
            for name in mistake.params:
                if name not in params:
                    raise BankError(
                        f"the mistake overrides '{name}', which is not a parameter of this question"
                        + _did_you_mean(name, params),
                        question=question.id,
                        field=f"{where}.params",
                    )
            fields += [(f"{where}.params.{k}", v, params, True) for k, v in mistake.params.items()]
            fields += [(f"{where}.feedback", mistake.feedback, params, False)]
            if mistake.when:
                fields.append((f"{where}.when", mistake.when, params, True))
            if mistake.code:
                fields.append((f"{where}.code", mistake.code, params, False))
            if mistake.tail:
                fields.append((f"{where}.tail", mistake.tail, params, False))
            for old, new in mistake.replace.items():
                fields += [(f"{where}.replace", old, params, False), (f"{where}.replace", new, params, False)]
            if mistake.expression:
                if not isinstance(question.answer, models.ValueAnswer):
                    raise BankError(
                        "a mistake's `expression` needs answer kind 'value'",
                        question=question.id,
                        field=f"{where}.expression",
                    )
                _check_python(mistake.expression, question.id, f"{where}.expression")
        for field, source, known, is_expression in fields:
            try:
                unknown = unknown_names(source, known, expression=is_expression)
            except TemplateProblem as exc:
                raise BankError(str(exc), question=question.id, field=field) from None
            if unknown:
                declared = ", ".join(sorted(params)) or "none"
                raise BankError(
                    f"uses {', '.join(repr(n) for n in unknown)}, which is not a parameter of this question "
                    f"(declared: {declared})" + _did_you_mean(unknown[0], known),
                    question=question.id,
                    field=field,
                )


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _check_claim(question: models.Question, claim: models.Scalar | list[models.Scalar]) -> None:
    """A claim that cannot be right whatever torch does is a bank error, not a disagreement found later."""
    if isinstance(claim, str) and "{" in claim:
        return  # a template: `qbank check` reads it once rendered
    answer = question.answer

    def fail(reason: str) -> None:
        raise BankError(reason, question=question.id, field="answer.claim")

    error = answers.split_printed(str(claim))[0]
    if isinstance(answer, models.ErrorAnswer) and answers.parse_error(error) is None:
        fail(
            f"{error!r} is not an error claim: write an exception type ('RuntimeError'), optionally with the start "
            "of its message ('RuntimeError: Expected 3'), or 'none'"
        )
    if not isinstance(answer, models.ValueAnswer):
        return
    if question.type == "true_false" and not isinstance(claim, bool):
        hint = f"; write {str(claim).lower()} without quotes" if str(claim).lower() in ("true", "false") else ""
        fail(f"a true_false question's claim must be true or false (got {claim!r}){hint}")
    if question.type == "numeric" and (
        isinstance(claim, bool | list) or (isinstance(claim, str) and answers.number_of(claim) is None)
    ):
        fail(f"a numeric question's claim must be a number (got {claim!r})")


def _check_python(expression: str, question: str, field: str) -> None:
    """Answer expressions are Python, evaluated after the code has run; they must at least parse."""
    try:
        compile(expression, "<expression>", "eval")
    except SyntaxError as exc:
        raise BankError(f"not a valid Python expression: {exc.msg}", question=question, field=field) from None


# --- validation errors ---------------------------------------------------------------------------


def _all_field_names() -> set[str]:
    names: set[str] = set()
    for obj in vars(models).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel):
            for name, info in obj.model_fields.items():
                names.add(info.alias or name)
    return names


def _explain(exc: ValidationError, data: Any, file: str | None, text: str | None) -> BankError:
    # An unknown field is usually a typo that also makes a required field "missing": report the typo, and
    # drop the "missing" error it explains.
    errors = sorted(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")
    typos = {
        (e["loc"][:-1], m)
        for e in errors
        if e["type"] == "extra_forbidden"
        for m in difflib.get_close_matches(str(e["loc"][-1]), _all_field_names(), n=1)
    }
    errors = _union_merged(
        [e for e in errors if not (e["type"] == "missing" and (e["loc"][:-1], e["loc"][-1]) in typos)]
    )
    first = errors[0]
    question, field = _locate(first["loc"], data)
    if first["type"] == "extra_forbidden":
        name = str(first["loc"][-1])
        reason = f"'{name}' is not a field of the bank format" + _did_you_mean(name, _all_field_names())
    elif first["type"] == "missing":
        reason = "this required field is missing"
    else:
        value = first.get("input")
        shown = repr(value) if isinstance(value, str | int | float | bool) else None
        reason = first["msg"].removeprefix("Value error, ") + (f" (got {shown})" if shown is not None else "")
    if len(errors) > 1:
        reason += f" ({len(errors) - 1} more problem{'s' if len(errors) > 2 else ''} after this one)"
    if question is None and first["type"] != "missing" and "question id" in reason:
        match = re.search(r"question id '([^']+)'", reason)
        question = match.group(1) if match else None
    line = _find_line(text, question, field)
    return BankError(reason, file=file, line=line, question=question, field=field or None)


#: What Pydantic's tags for the members of a union of scalars mean, in a bank author's words.
_SCALAR_TAGS = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "text"}


def _union_merged(errors: list[Any]) -> list[Any]:
    """One error for a value that matched no member of a union of scalars, instead of one per member, each with
    the member's tag (`values[0].bool`) in its location."""
    merged: list[Any] = []
    for error in errors:
        loc = error["loc"]
        # Only a member's type mismatch: `int` is also the tag of an integer parameter, whose own errors stay.
        if loc and loc[-1] in _SCALAR_TAGS and error["type"].split("_")[0] in ("bool", "int", "float", "string"):
            kinds = _SCALAR_TAGS[loc[-1]]
            if merged and merged[-1]["loc"] == loc[:-1] and merged[-1].get("union"):
                merged[-1]["msg"] += f", {kinds}"
                continue
            error = {**error, "loc": loc[:-1], "msg": f"this value must be {kinds}", "union": True}
        merged.append(error)
    for error in merged:
        if error.get("union") and ", " in error["msg"]:
            head, _, last = error["msg"].rpartition(", ")
            error["msg"] = f"{head} or {last}"
    return merged


def _locate(loc: tuple[Any, ...], data: Any) -> tuple[str | None, str]:
    """Turn Pydantic's location into (question id, dotted field), dropping union tags it inserts."""
    question: str | None = None
    parts: list[str] = []
    node = data
    items = list(loc)
    if len(items) >= 2 and items[0] == "questions" and isinstance(items[1], int):
        questions = data.get("questions") if isinstance(data, dict) else None
        index = items[1]
        if isinstance(questions, list) and index < len(questions) and isinstance(questions[index], dict):
            question = str(questions[index].get("id", f"#{index + 1}"))
            node = questions[index]
        else:
            question = f"#{index + 1}"
            node = None
        items = items[2:]
    for item in items:
        in_list = isinstance(node, list) and isinstance(item, int) and item < len(node)
        if (isinstance(node, dict) and item in node) or in_list:
            node = node[item]
        elif isinstance(node, dict) and item in (node.get("type"), node.get("kind")):
            continue  # the discriminator Pydantic adds to the path of a tagged union
        else:
            node = None
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(str(item))
    return question, ".".join(parts)


def _find_line(text: str | None, question: str | None, field: str | None) -> int | None:
    """Best-effort line number: the question's `id = "..."` line, then the field below it."""
    if not text:
        return None
    lines = text.splitlines()
    start = 0
    if question:
        pattern = re.compile(r"""^\s*id\s*=\s*["']""" + re.escape(question) + r"""["']""")
        for number, line in enumerate(lines):
            if pattern.match(line):
                start = number
                break
        else:
            return None
    if field:
        key = re.split(r"[.\[]", field)[0]
        pattern = re.compile(r"^\s*(\[+[\w.]*\b" + re.escape(key) + r"\b|" + re.escape(key) + r"\s*=)")
        found: list[int] = []
        for number in range(start, len(lines)):
            if number > start and question and re.match(r"^\s*\[\[questions\]\]", lines[number]):
                break
            if pattern.match(lines[number]):
                found.append(number + 1)
        # `mistakes[1]`: the second `[[questions.mistakes]]` table, not the first.
        index = re.match(r"\w+\[(\d+)\]", field)
        headers = [line for line in found if lines[line - 1].lstrip().startswith("[[")]
        if index and int(index.group(1)) < len(headers):
            return headers[int(index.group(1))]
        if found:
            return found[0]
    return start + 1 if question else None
