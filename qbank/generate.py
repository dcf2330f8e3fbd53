"""Bank + seed → Variants: sample parameters, render templates, run the code, assemble choices.

All randomness happens here, before any exporter runs: parameters, and the order of choices, each
from a generator seeded by (seed, bank, question[, variant]) so that output is reproducible.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import math
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from qbank import answers, display
from qbank.answers import spellings
from qbank.collector import fewer_collections
from qbank.errors import BankError
from qbank.models import (
    MAX_BLANK_CANDIDATES,
    Bank,
    ErrorAnswer,
    Mistake,
    Question,
    Setup,
    StaticAnswer,
    StdoutAnswer,
    ValueAnswer,
)
from qbank.params import Params, rng_for, sample
from qbank.pynames import bound_names, expression_names
from qbank.runner import Job, RunResult, Store, WorkerPool
from qbank.templating import RENDER_SECONDS, TemplateProblem, TooSlow, bounded, evaluate, render, render_code
from qbank.variant import (
    BLOCK_LETTERS,
    BlankKey,
    Choice,
    ChoiceSource,
    ErrorInfo,
    ErrorOutcome,
    MatchPair,
    Outcome,
    StdoutOutcome,
    ValueOutcome,
    Variant,
    blank_marker,
)

#: The most variants of one question a run may ask for: more would not fit in memory as Variants anyway.
MAX_VARIANTS = 1_000_000
#: Variants assembled per wait for results: few enough that assembly keeps pace with the workers, many
#: enough that waiting costs little.
ASSEMBLY_CHUNK = 64


@dataclass(frozen=True)
class Failure:
    """A variant that could not be made; the others are still produced."""

    bank_id: str
    question_id: str
    seed: int
    params: Params
    reason: str
    #: What the variant's code gave, when it ran to an outcome of the kind the question asks for (the variant failed
    #: later, e.g. assembling its options): `check` still compares a hand-written key with it.
    outcome: Outcome | None = None

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params.items()) or "no parameters"
        return f"bank '{self.bank_id}', question '{self.question_id}', seed {self.seed}, {shown}: {self.reason}"


@dataclass
class Generation:
    bank: Bank
    seed: int
    variants: list[Variant]
    failures: list[Failure] = field(default_factory=list)
    #: Things the user should know that are not failures (e.g. a parameter space smaller than asked).
    notices: list[str] = field(default_factory=list)
    runs: int = 0
    cache_hits: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    #: Each variant's run time (seconds of its main snippet), by variant id, for `stress`.
    run_seconds: dict[str, float] = field(default_factory=dict)
    #: Distractor candidates dropped because they equalled the key or another choice, by variant id.
    collisions: dict[str, int] = field(default_factory=dict)
    #: Mistakes whose code could not run to an outcome, by (question id, mistake name): the first reason.
    #: Their variants fall back to other distractors, but the bank most likely has a bug.
    mistake_failures: dict[tuple[str, str], str] = field(default_factory=dict)


@dataclass
class _Plan:
    """A variant before its code has run: rendered text and the snippets to run."""

    question: Question
    params: Params
    stem: str
    code: str | None
    hidden_lines: int  # first lines of `code` that are setup the learner does not see
    hints: list[str]
    job: Job | None
    mistakes: list[tuple[Mistake, Job, str]]  # (mistake, its job, its rendered feedback)
    distractors: list[tuple[str, str]]  # (text, feedback)
    choices: list[Choice]  # static choices
    #: Mistakes that could not be rendered for these parameters, with where and why: they give no distractor.
    broken_mistakes: list[tuple[Mistake, str]]
    #: A fill_in question's blanks in the order the code shows them: (name, [(candidate value, its job)]).
    blanks: list[tuple[str, list[tuple[Any, Job]]]] = field(default_factory=list)
    #: The code as learners see it, each blank a marker (`blank_marker(1)`, …); None without blanks.
    gapped_code: str | None = None
    #: An ordering question's blocks in the order of the code, and a job per other order tried (block indices).
    blocks: list[str] = field(default_factory=list)
    orders: list[tuple[tuple[int, ...], Job]] = field(default_factory=list)
    #: How many orders there are in all, when fewer were tried.
    orders_possible: int = 0
    #: An ordering question's distractor blocks, and a job per place each was tried in: (distractor, place, job).
    distractor_blocks: list[str] = field(default_factory=list)
    distractor_runs: list[tuple[int, int, Job]] = field(default_factory=list)
    #: A matching question's items: (what learners see, as Markdown; the job of its code).
    items: list[tuple[str, Job]] = field(default_factory=list)


def variant_id(bank_id: str, question_id: str, params: Params) -> str:
    canonical = json.dumps([bank_id, question_id, params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def generate(
    bank: Bank,
    variants: int,
    seed: int,
    *,
    pool: WorkerPool | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    store: Store | None = None,
    sandbox: bool = True,
) -> Generation:
    """Up to `variants` distinct variants of every question of `bank`.

    `progress(done, total)` is called as snippets finish. Pass a `pool` to share workers and their
    cache between calls; otherwise one is made (with `jobs` workers and the outcome `store`, if any) and closed,
    whose workers run the bank's code in the sandbox (`sandbox=False`: as plain processes, for trusted banks only).
    """
    if not 1 <= variants <= MAX_VARIANTS:
        raise BankError(f"the number of variants must be from 1 to {MAX_VARIANTS:,} (got {variants:,})")
    result = Generation(bank=bank, seed=seed, variants=[])
    # A new pool starts its workers at the first snippet not cached: their torch import overlaps with sampling and
    # rendering; when `store` holds every outcome, no worker (and no torch) starts at all.
    owned = pool is None
    active = pool or WorkerPool(jobs, store=store, sandbox=sandbox)
    hits_before, runs_before = active.hits, active.runs
    finished, total = 0, 0  # total is known once every job is submitted

    def tick(count: int) -> None:
        nonlocal finished
        finished += count
        if progress and total:
            progress(finished, total)

    try:
        with fewer_collections(), active.session(tick) as session:
            # Snippets run as soon as their variant is rendered, and variants are assembled as soon as their
            # snippets have run: the stages overlap, so their times add up to more than the whole.
            started = time.perf_counter()
            plans: list[_Plan] = []
            for plan in _plans(bank, variants, seed, result):
                plans.append(plan)
                for job in _jobs(plan):
                    session.submit(job)
            session.close()
            result.seconds["sample+render"] = time.perf_counter() - started
            total = session.to_run
            if progress and total:
                progress(finished, total)
            assembling = 0.0
            for start in range(0, len(plans), ASSEMBLY_CHUNK):
                chunk = plans[start : start + ASSEMBLY_CHUNK]
                results = session.results(job.key for plan in chunk for job in _jobs(plan))
                begin = time.perf_counter()
                for plan in chunk:
                    _add_variant(bank, plan, results, seed, result)
                assembling += time.perf_counter() - begin
            result.seconds["run"] = session.span()
            result.seconds["assemble"] = assembling
    finally:
        if owned:
            active.close()
    result.runs = active.runs - runs_before
    result.cache_hits = active.hits - hits_before
    return result


def _add_variant(bank: Bank, plan: _Plan, results: dict[str, RunResult], seed: int, result: Generation) -> None:
    """Assemble one planned variant into `result`, or record why it failed."""
    for mistake, job, _ in plan.mistakes:
        failure = results[job.key].failure
        if failure:
            result.mistake_failures.setdefault((plan.question.id, mistake.name), failure)
    for mistake, reason in plan.broken_mistakes:
        result.mistake_failures.setdefault((plan.question.id, mistake.name), reason)
    try:
        variant, collisions = _assemble(bank, plan, results, seed)
    except _VariantFailed as exc:
        outcome = None
        if plan.job is not None:
            run = results[plan.job.key]
            if not run.failure and (run.error is None or isinstance(plan.question.answer, ErrorAnswer)):
                outcome = _outcome(plan.question, run)
        result.failures.append(Failure(bank.id, plan.question.id, seed, plan.params, str(exc), outcome))
        return
    result.variants.append(variant)
    result.collisions[variant.variant_id] = collisions
    if plan.orders_possible > MAX_ORDERS:
        notice = (
            f"question '{plan.question.id}': its blocks have {plan.orders_possible:,} orders; {MAX_ORDERS} of them "
            "(drawn with the seed) were run, so another order that works may not be accepted"
        )
        if notice not in result.notices:
            result.notices.append(notice)
    if plan.job is not None:
        result.run_seconds[variant.variant_id] = results[plan.job.key].seconds


def _plans(bank: Bank, variants: int, seed: int, result: Generation) -> Iterator[_Plan]:
    """Sample every question's parameters and render its texts and snippets, one variant at a time."""
    for question in bank.questions:
        drawn = sample(question, variants, seed, bank.id)
        if len(drawn.params) < variants and question.params:
            result.notices.append(
                f"question '{question.id}': its parameters allow only {len(drawn.params)} distinct "
                f"variant{'s' if len(drawn.params) != 1 else ''}; {variants} were asked for"
            )
        too_slow: str | None = None  # once a variant's templates ran out of time, the others would too
        for params in drawn.params:
            if too_slow is not None:
                result.failures.append(Failure(bank.id, question.id, seed, params, too_slow))
                continue
            try:
                with bounded(RENDER_SECONDS, "rendering this variant's templates"):
                    plan = _plan(question, params, bank.setup, seed, bank.id)
            except TemplateProblem as exc:
                result.failures.append(Failure(bank.id, question.id, seed, params, str(exc)))
                too_slow = str(exc) if isinstance(exc, TooSlow) else None
                continue
            yield plan


def _jobs(plan: _Plan) -> list[Job]:
    blanks = [job for _, tried in plan.blanks for _, job in tried]
    orders = [job for _, job in plan.orders] + [job for _, _, job in plan.distractor_runs]
    items = [job for _, job in plan.items]
    return ([plan.job] if plan.job else []) + [job for _, job, _ in plan.mistakes] + blanks + orders + items


#: Question types whose stem may name the `outcome` of the code, so it is rendered after the run.
AFTER_RUN = ("fill_in", "ordering")
#: The most orders of an ordering question's blocks that are run per variant: all of them up to 6 blocks (720
#: orders), a seeded sample of this many beyond.
MAX_ORDERS = 720


def _blocks(body: str, unit: str) -> list[str]:
    """The code cut into blocks: its non-empty lines, or its paragraphs (lines between blank lines)."""
    if unit == "line":
        return [line for line in body.split("\n") if line.strip()]
    paragraphs = re.split(r"\n[ \t]*\n", body.strip("\n"))
    return [paragraph.strip("\n") for paragraph in paragraphs if paragraph.strip()]


def _orders_of(
    question: Question, params: Params, bank_setup: Setup | None, expression: str | None, seed: int, bank_id: str
) -> tuple[list[str], list[tuple[tuple[int, ...], Job]], int]:
    """An ordering question's blocks, a job per other order that compiles (all orders, or a seeded sample), and how
    many orders there are."""
    assert question.code is not None
    unit = question.order.unit if question.order else "line"
    blocks = _blocks(render_code(question.code, code_context(params)), unit)
    if not 2 <= len(blocks) <= len(BLOCK_LETTERS):
        raise TemplateProblem(
            f"the code makes {len(blocks)} blocks; an ordering question takes 2 to {len(BLOCK_LETTERS)}"
        )
    possible = math.factorial(len(blocks))
    identity = tuple(range(len(blocks)))
    if possible <= MAX_ORDERS:
        candidates = list(itertools.permutations(identity))
    else:
        rng = rng_for(seed, bank_id, question.id, "orders", json.dumps(params, sort_keys=True))
        chosen: set[tuple[int, ...]] = set()
        while len(chosen) < MAX_ORDERS:
            chosen.add(tuple(rng.sample(identity, len(identity))))
        candidates = sorted(chosen)
    jobs = []
    for order in candidates:
        if order == identity:
            continue  # the author's order is the code that runs anyway
        job = _job_if_python(question, bank_setup, "\n".join(blocks[index] for index in order), params, expression)
        if job is not None:
            jobs.append((order, job))
    return blocks, jobs, possible


def _job_if_python(
    question: Question, bank_setup: Setup | None, body: str, params: Params, expression: str | None
) -> Job | None:
    """The job that runs `body` after the setups, or None when `body` is not even Python (an indented line first):
    that needs no run."""
    try:
        compile(body, "<body>", "exec")
    except SyntaxError:
        return None
    code = composed(question, bank_setup, body, params, expression)[0]
    return Job(code, expression, question.run_limits, question.inference_mode)


def _distractor_runs(
    question: Question, params: Params, bank_setup: Setup | None, expression: str | None, blocks: list[str]
) -> tuple[list[str], list[tuple[int, int, Job]]]:
    """An ordering question's distractor blocks, each put in every place of the right order (a job per place that
    compiles): if one of them gives the outcome too, it was no distractor."""
    if question.order is None or not question.order.distractors:
        return [], []
    extra = [render_code(source, code_context(params)).strip("\n") for source in question.order.distractors]
    if len(blocks) + len(extra) > len(BLOCK_LETTERS):
        raise TemplateProblem(f"{len(blocks) + len(extra)} blocks with the distractors; at most {len(BLOCK_LETTERS)}")
    runs = []
    for which, block in enumerate(extra):
        for place in range(len(blocks) + 1):
            job = _job_if_python(
                question, bank_setup, "\n".join([*blocks[:place], block, *blocks[place:]]), params, expression
            )
            if job is not None:
                runs.append((which, place, job))
    return extra, runs


def code_context(params: Params) -> dict[str, Any]:
    """What a code template sees: the parameters, and `blank(name)` (a fill_in blank, filled with its value)."""
    return {**params, "blank": _blank_renderer(params)}


def _blank_renderer(params: Params, shown: dict[str, str] | None = None) -> Callable[[str], str]:
    """`blank(name)` for a code template: the parameter's value (or the text `shown` gives for that name)."""

    def blank(name: str) -> str:
        if name not in params:
            raise TemplateProblem(f"blank({name!r}): '{name}' is not a parameter of this question")
        if shown is not None and name in shown:
            return shown[name]
        return str(params[name])

    return blank


def _blanks_of(
    question: Question, params: Params, bank_setup: Setup | None, expression: str | None
) -> tuple[list[tuple[str, list[tuple[Any, Job]]]], str]:
    """A fill_in question's blanks, each with a job per other value to try, and the code with the blanks marked."""
    order: list[str] = []

    def note(name: str) -> str:
        if name not in order:
            order.append(name)
        return blank_marker(order.index(name) + 1)

    assert question.code is not None
    # Composed as the code that runs is (hidden lines included), so that the same first lines can be left out.
    gapped = composed(question, bank_setup, render_code(question.code, {**params, "blank": note}), params, expression)[
        0
    ]
    blanks: list[tuple[str, list[tuple[Any, Job]]]] = []
    for name in order:
        options = question.blanks.get(name)
        spec = question.params[name]
        if options is not None and options.candidates is not None:
            candidates = list(options.candidates)
        elif spec.count() <= MAX_BLANK_CANDIDATES:
            candidates = [spec.value(index) for index in range(spec.count())]
        else:
            raise TemplateProblem(f"blank('{name}') has {spec.count():,} values to try; give blanks.{name}.candidates")
        tried: list[tuple[Any, Job]] = []
        for value in candidates:
            if str(value) == str(params[name]):
                continue
            context = {**params, "blank": _blank_renderer(params, {name: str(value)})}
            code = composed(question, bank_setup, render_code(question.code, context), params, expression)[0]
            tried.append((value, Job(code, expression, question.run_limits, question.inference_mode)))
        blanks.append((name, tried))
    return blanks, gapped


class _VariantFailed(Exception):
    pass


def setups(bank_setup: Setup | None, question: Question) -> list[Setup]:
    """The setup snippets of a question in the order they run: hidden ones first, the bank's before the question's."""
    found = [setup for setup in (bank_setup, question.setup) if setup is not None]
    return [setup for setup in found if not setup.show] + [setup for setup in found if setup.show]


def composed(
    question: Question, bank_setup: Setup | None, body: str, params: Params, expression: str | None = None
) -> tuple[str, int]:
    """The snippet that runs: the setups rendered, then `body` (rendered code); and how many first lines are hidden.

    Parameters the answer `expression` reads but the code never binds are bound in hidden first lines
    (`times = 3`), so the expression sees them and the snippet still runs on its own.
    """
    parts = [(render_code(setup.code, params), setup.show) for setup in setups(bank_setup, question)]
    code = "\n".join([*(text for text, _ in parts), body])
    wanted = sorted(expression_names(expression) & params.keys()) if expression else []
    if wanted:
        try:
            bound = bound_names(ast.parse(code)) or set()
        except SyntaxError:
            bound = set()  # the run reports the syntax error
        parts = [(f"{name} = {params[name]!r}", False) for name in wanted if name not in bound] + parts
        code = "\n".join([*(text for text, _ in parts), body])
    hidden = sum(text.count("\n") + 1 for text, show in parts if not show)
    return code, hidden


def mistake_code(
    question: Question, bank_setup: Setup | None, mistake: Mistake, params: Params, expression: str | None = None
) -> str:
    """The snippet a mistake runs: its own `code`, or the question's with its `tail`; after the setups; then the
    mistake's `replace` edits on the whole (so a mistake can change a line of the setup too)."""
    body = render_code(mistake.code or question.code or "", code_context(params))
    if mistake.tail is not None:
        tail = render_code(mistake.tail, params).rstrip("\n").split("\n")
        lines = body.rstrip("\n").split("\n")
        if len(tail) > len(lines):
            raise TemplateProblem(f"the tail has {len(tail)} lines; the code has only {len(lines)}")
        body = "\n".join(lines[: len(lines) - len(tail)] + tail)
    code = composed(question, bank_setup, body, params, expression)[0]
    for old, new in mistake.replace.items():
        before, after = render(old, params), render(new, params)
        if not before or before not in code:
            raise TemplateProblem(f"replace: {before!r} does not occur in the rendered code")
        code = code.replace(before, after)
    return code


def _plan(question: Question, params: Params, bank_setup: Setup | None, seed: int = 0, bank_id: str = "") -> _Plan:
    fill_in = question.type == "fill_in"
    # A fill_in or ordering stem names the outcome to reach (`{{ outcome }}`): it is rendered once the code has run.
    stem = question.stem if question.type in AFTER_RUN else render(question.stem, params)
    expression = question.answer.expression if isinstance(question.answer, ValueAnswer) else None
    blanks, gapped = _blanks_of(question, params, bank_setup, expression) if fill_in else ([], None)
    blocks: list[str] = []
    orders: list[tuple[tuple[int, ...], Job]] = []
    possible = 0
    distractor_blocks: list[str] = []
    distractor_runs: list[tuple[int, int, Job]] = []
    code: str | None = None
    hidden = 0
    if question.type == "ordering":
        blocks, orders, possible = _orders_of(question, params, bank_setup, expression, seed, bank_id)
        distractor_blocks, distractor_runs = _distractor_runs(question, params, bank_setup, expression, blocks)
        # The code that runs first is the blocks in the author's order (blank lines between paragraphs dropped).
        code, hidden = composed(question, bank_setup, "\n".join(blocks), params, expression)
    elif question.code:
        code, hidden = composed(
            question, bank_setup, render_code(question.code, code_context(params)), params, expression
        )
    limits, fast = question.run_limits, question.inference_mode
    items: list[tuple[str, Job]] = []
    if question.type == "matching":
        shared = render_code(question.code, code_context(params)) if question.code else ""
        for item in question.items:
            own = render_code(item.code, code_context(params))
            body = f"{shared.rstrip(chr(10))}\n{own}" if shared.strip() else own
            item_code = composed(question, bank_setup, body, params, expression)[0]
            shown = render(item.label, params) if item.label else display.code_block(own.strip("\n"), "python")
            items.append((shown, Job(item_code, expression, limits, fast)))
    job = (
        Job(code, expression, limits, fast)
        if code is not None and question.answer.kind != "static" and question.type != "matching"
        else None
    )
    mistakes: list[tuple[Mistake, Job, str]] = []
    broken: list[tuple[Mistake, str]] = []
    for index, mistake in enumerate(question.mistakes):
        # A mistake that cannot be rendered for these parameters costs its distractor, not the variant.
        where = f"mistakes[{index}].when"
        try:
            if mistake.when and not evaluate(mistake.when, params):
                continue
            changed = dict(params)
            for name, source in mistake.params.items():
                where = f"mistakes[{index}].params.{name}"
                changed[name] = evaluate(source, params)
            where = f"mistakes[{index}].code" if mistake.code else f"mistakes[{index}] (tail, replace)"
            code_of_mistake = mistake_code(question, bank_setup, mistake, changed, mistake.expression or expression)
            where = f"mistakes[{index}].feedback"
            feedback = render(mistake.feedback, params) if mistake.feedback else mistake.name
        except TemplateProblem as exc:
            broken.append((mistake, f"{where}: {exc}"))
            continue
        mistakes.append((mistake, Job(code_of_mistake, mistake.expression or expression, limits, fast), feedback))
    return _Plan(
        question=question,
        params=params,
        stem=stem,
        code=code,
        hidden_lines=hidden,
        hints=[render(hint, params) for hint in question.hints],
        job=job,
        mistakes=mistakes,
        distractors=[
            (render(d.text, params), render(d.feedback, params))
            for d in question.distractors
            if not d.when or evaluate(d.when, params)
        ],
        choices=[
            Choice(text=render(c.text, params), correct=c.correct, feedback=render(c.feedback, params))
            for c in question.choices
        ],
        broken_mistakes=broken,
        blanks=blanks,
        gapped_code=gapped,
        blocks=blocks,
        orders=orders,
        orders_possible=possible,
        distractor_blocks=distractor_blocks,
        distractor_runs=distractor_runs,
        items=items,
    )


@dataclass(frozen=True)
class _Shown:
    """An outcome as a learner sees it: plain text (for comparing and typing) and Markdown."""

    plain: str
    markdown: str
    value: Any = None


def _shown(question: Question, run: RunResult) -> _Shown:
    """How one run's outcome reads as an answer; raises _VariantFailed if it cannot be one."""
    answer = question.answer
    if run.failure:
        raise _VariantFailed(run.failure)
    if isinstance(answer, ErrorAnswer):
        plain = display.error_text(run.error, answer.show)
        return _Shown(plain, plain if run.error is None else display.as_code(plain))
    if run.error is not None:
        kind = "print" if isinstance(answer, StdoutAnswer) else "give a value"
        raise _VariantFailed(f"the code was expected to {kind} but raised {run.error['type']}: {run.error['message']}")
    if isinstance(answer, StdoutAnswer):
        plain = run.stdout.rstrip("\n")
        if not plain.strip():
            raise _VariantFailed("the code printed nothing, so there is no answer to show")
        return _Shown(plain, display.as_code(plain))
    assert isinstance(answer, ValueAnswer)
    plain = display.format_value(run.value, answer.digits)
    return _Shown(plain, display.as_code(plain), run.value)


def _outcome(question: Question, run: RunResult) -> Outcome:
    answer = question.answer
    if isinstance(answer, ErrorAnswer):
        return ErrorOutcome(error=ErrorInfo(**run.error) if run.error else None, stdout=run.stdout)
    if isinstance(answer, StdoutAnswer):
        return StdoutOutcome(stdout=run.stdout)
    assert isinstance(answer, ValueAnswer)
    return ValueOutcome(value=run.value, expression=answer.expression)


def _assemble(bank: Bank, plan: _Plan, results: dict[str, RunResult], seed: int) -> tuple[Variant, int]:
    """The variant, and how many distractor candidates collided with the key or each other."""
    question = plan.question
    vid = variant_id(bank.id, question.id, plan.params)
    rng = rng_for(seed, bank.id, question.id, vid)
    outcome: Outcome | None = None
    blanks: list[BlankKey] = []
    blocks: list[str] = []
    orders: list[list[int]] = []
    pairs: list[MatchPair] = []
    matches: list[str] = []
    choices: list[Choice] = []
    accepted: list[str] = []
    tolerance: float | None = None
    collisions = 0
    if question.type == "matching":
        pairs, matches = _match_pairs(plan, results, rng)
        key_plain = "; ".join(pair.match for pair in pairs)
    elif plan.job is None:
        answer = question.answer
        assert isinstance(answer, StaticAnswer)
        choices = list(plan.choices)
        if question.type == "multiple_choice":
            choices, collisions = _static_choices(question, plan)
        if question.type == "true_false":
            choices = _true_false(bool(answer.value))
            key_plain = str(bool(answer.value))
        elif question.type == "numeric":
            key_plain = display.format_value(float(answer.value or 0.0), 12)
            accepted, tolerance = [key_plain], answer.tolerance
        elif question.type == "short_answer":
            accepted = list(answer.accept)
            key_plain = accepted[0]
        else:
            key_plain = "; ".join(c.text for c in choices if c.correct)
        if question.shuffle and question.type == "multiple_choice":
            rng.shuffle(choices)
    else:
        run = results[plan.job.key]
        shown = _shown(question, run)
        outcome = _outcome(question, run)
        key_plain = shown.plain
        if question.type == "fill_in":
            blanks = _blank_keys(plan, shown, results)
            key_plain = shown.plain
        elif question.type == "ordering":
            blocks, orders = _order_keys(plan, shown, results, rng)
            key_plain = shown.plain
        elif question.type == "multiple_choice":
            draw = lambda: rng_for(seed, bank.id, question.id, vid, "mistakes")  # noqa: E731 - made only if needed
            choices, collisions = _choices(question, plan, shown, results, draw)
            rng.shuffle(choices)
        elif question.type == "true_false":
            if not isinstance(shown.value, bool):
                raise _VariantFailed(f"a true_false question needs a True/False value, got {shown.plain}")
            choices = _true_false(shown.value)
        elif question.type == "numeric":
            if not isinstance(shown.value, int | float) or isinstance(shown.value, bool):
                raise _VariantFailed(f"a numeric question needs a number, got {shown.plain}")
            assert isinstance(question.answer, ValueAnswer)
            # The key every format grades and shows is the value to `digits` significant digits, accepted within
            # half a unit of its last digit (or the question's tolerance, if wider).
            text, half_unit = display.rounded(shown.value, question.answer.digits)
            accepted, tolerance = [text], max(question.answer.tolerance, half_unit)
            key_plain = text  # `{{ answer }}` is the key as graded and shown, digit for digit
        else:
            accepted = spellings(shown.plain)
    # `answer_type`: the exception's name alone (or "none"), for explanations that name it in a sentence.
    answer_type = ""
    if isinstance(outcome, ErrorOutcome):
        answer_type = outcome.error.type if outcome.error else "none"
    context = {**plan.params, "answer": key_plain, "answer_type": answer_type, "outcome": key_plain}
    stem = plan.stem
    try:
        with bounded(RENDER_SECONDS, "rendering the explanation"):
            explanation = render(question.explanation, context)
            if question.type in AFTER_RUN:
                stem = render(question.stem, context)
    except TemplateProblem as exc:
        raise _VariantFailed(f"explanation: {exc}") from None
    gapped = plan.gapped_code
    if gapped is not None and plan.hidden_lines:
        gapped = "\n".join(gapped.split("\n")[plan.hidden_lines :])
    # Built from values this module made and typed itself: skip re-validation, a third of assembly's time.
    variant = Variant.model_construct(
        bank_id=bank.id,
        question_id=question.id,
        variant_id=vid,
        params=plan.params,
        title=question.title,
        category=question.category,
        type=question.type,
        multiple_answers=question.multiple_answers,
        difficulty=question.difficulty,
        time_limit=question.time_limit,
        attempts=question.attempts,
        stem=stem,
        code=plan.code,
        hidden_lines=plan.hidden_lines,
        choices=choices,
        answers=accepted,
        tolerance=tolerance,
        hint=plan.hints[0] if plan.hints else None,
        hints=plan.hints,
        explanation=explanation,
        tags=list(dict.fromkeys([*bank.tags, *question.tags])),
        outcome=outcome,
        blanks=blanks,
        gapped_code=gapped,
        blocks=blocks,
        orders=orders,
        pairs=pairs,
        matches=matches,
    )
    return variant, collisions


def _gives(question: Question, run: RunResult, target: _Shown) -> bool:
    """Whether a run (another value, order or block) gives the same outcome as the code that ran, by meaning; a run
    that gives no outcome of the expected kind does not."""
    try:
        shown = _shown(question, run)
    except _VariantFailed:
        return False
    return answers.same(shown.plain, target.plain, errors=isinstance(question.answer, ErrorAnswer))


def _blank_keys(plan: _Plan, target: _Shown, results: dict[str, RunResult]) -> list[BlankKey]:
    """Each blank's accepted values: the one the code ran with, and every other value tried whose run gives the same
    outcome (compared by meaning). A blank declared `unique` that another value also fills fails the variant."""
    question = plan.question
    keys = []
    for name, tried in plan.blanks:
        working = [str(value) for value, job in tried if _gives(question, results[job.key], target)]
        options = question.blanks.get(name)
        if working and options is not None and options.unique:
            verb = "gives" if len(working) == 1 else "give"
            raise _VariantFailed(
                f"blank '{name}' is declared unique, but {', '.join(working)} also {verb} {target.plain!r} (as "
                f"{plan.params[name]!r} does): add a constraint or change the code"
            )
        keys.append(BlankKey(name=name, answers=[str(plan.params[name]), *working]))
    return keys


def _order_keys(
    plan: _Plan, target: _Shown, results: dict[str, RunResult], rng: random.Random
) -> tuple[list[str], list[list[int]]]:
    """The blocks as shown (shuffled) and every order of them, by shown position, whose run gives the same outcome as
    the author's order: that one first. An ordering declared `unique` that another order also solves fails."""
    question = plan.question
    identity = tuple(range(len(plan.blocks)))
    working = [identity, *(order for order, job in plan.orders if _gives(question, results[job.key], target))]
    if len(working) > 1 and question.order is not None and question.order.unique:
        other = " / ".join(plan.blocks[index].strip() for index in working[1])
        raise _VariantFailed(
            f"the order is declared unique, but {len(working) - 1} other order(s) also give {target.plain!r}, e.g. "
            f"{other!r}: add or change lines so that only one order works"
        )
    for which, place, job in plan.distractor_runs:
        if _gives(question, results[job.key], target):
            raise _VariantFailed(
                f"the distractor block {plan.distractor_blocks[which]!r} also gives {target.plain!r} when it is "
                f"block {place + 1}: it would not be wrong to use it; change it"
            )
    everything = [*plan.blocks, *plan.distractor_blocks]  # distractors are numbered after the real blocks
    display = list(range(len(everything)))
    for _ in range(20):  # shown in an order that is not already a solution, where the blocks allow one
        rng.shuffle(display)
        if tuple(display) not in working or len(display) < 2:
            break
    position = {block: shown_at for shown_at, block in enumerate(display)}
    return [everything[index] for index in display], [[position[index] for index in order] for order in working]


def _match_pairs(plan: _Plan, results: dict[str, RunResult], rng: random.Random) -> tuple[list[MatchPair], list[str]]:
    """Each item with the outcome of its code; outcomes that mean the same are one match (shown once)."""
    question = plan.question
    errors = isinstance(question.answer, ErrorAnswer)
    pairs: list[MatchPair] = []
    matches: list[str] = []
    for number, (shown_item, job) in enumerate(plan.items, start=1):
        try:
            outcome = _shown(question, results[job.key])
        except _VariantFailed as exc:
            raise _VariantFailed(f"items[{number - 1}]: {exc}") from None
        match = next((m for m in matches if answers.same(m, outcome.plain, errors=errors)), None)
        if match is None:
            match = outcome.plain
            matches.append(match)
        pairs.append(MatchPair(item=shown_item, code=job.code, match=match))
    if len(matches) < 2:
        raise _VariantFailed(f"every item gives {matches[0]!r}: nothing to match; change the items or add a constraint")
    rng.shuffle(matches)
    return pairs, matches


def _true_false(value: bool) -> list[Choice]:
    return [
        Choice(text="True", correct=value, source="answer"),
        Choice(text="False", correct=not value, source="answer"),
    ]


class _Options:
    """The options of one variant, each different in meaning from the others (`qbank.answers`)."""

    def __init__(self, wanted: int, errors: bool) -> None:
        self.wanted, self.errors = wanted, errors
        self.chosen: list[tuple[str, Choice]] = []  # (plain text, option)
        #: Candidates from mistakes and the bank dropped as meaning the same as an option already chosen.
        self.collisions = 0

    def match(self, plain: str) -> Choice | None:
        text = plain.strip()
        return next((choice for seen, choice in self.chosen if answers.same(seen, text, errors=self.errors)), None)

    def offer(self, plain: str, choice: Choice) -> None:
        if not plain.strip():
            return
        # Counted even once the options are full: a mistake that gives the key is worth knowing about.
        if self.match(plain) is not None:
            self.collisions += choice.source != "near-miss"
        elif not self.full:
            self.chosen.append((plain.strip(), choice))

    @property
    def full(self) -> bool:
        return len(self.chosen) >= self.wanted

    @property
    def choices(self) -> list[Choice]:
        return [choice for _, choice in self.chosen]


def _static_choices(question: Question, plan: _Plan) -> tuple[list[Choice], int]:
    """The bank's choices as rendered; two that mean the same are one option, and a right and a wrong one that
    mean the same fail the variant (its key would contradict itself)."""
    texts = [display.plain_of(choice.text) for choice in plan.choices]
    keys = [text for text, choice in zip(texts, plan.choices, strict=True) if choice.correct]
    options = _Options(len(plan.choices), errors=answers.claims_errors(keys, texts))
    for choice in plan.choices:
        plain = display.plain_of(choice.text)
        twin = options.match(plain)
        if twin is not None and twin.correct != choice.correct:
            right, wrong = (twin, choice) if twin.correct else (choice, twin)
            raise _VariantFailed(
                f"the wrong choice {wrong.text!r} means the same as the right choice {right.text!r} for these "
                "parameters: add a constraint or change the choices"
            )
        options.offer(plain, choice)
    if len(options.chosen) < 2:
        raise _VariantFailed("fewer than two different choices are left once choices meaning the same are merged")
    return options.choices, options.collisions


def _choices(
    question: Question, plan: _Plan, key: _Shown, results: dict[str, RunResult], draw: Callable[[], random.Random]
) -> tuple[list[Choice], int]:
    """The key and enough distractors different from it and from each other in meaning: mistakes first, then
    the bank's, then near misses. When more mistakes apply than there are wrong options, the order they are offered
    in is drawn (with the generator `draw` makes), so that over the variants every mistake is shown.

    Also returns how many mistake and bank candidates were dropped as meaning an option already chosen.
    """
    errors = isinstance(question.answer, ErrorAnswer)
    options = _Options(question.num_choices, errors)
    options.offer(key.plain, Choice.model_construct(text=key.markdown, correct=True, feedback="", source="answer"))
    # A mistake that cannot run gives no distractor; the next source fills in.
    runnable = [(mistake, job, feedback) for mistake, job, feedback in plan.mistakes if not results[job.key].failure]
    if len(runnable) > question.num_choices - 1:
        draw().shuffle(runnable)
    for mistake, job, feedback in runnable:
        run = results[job.key]
        try:
            shown = _shown(question, run)
        except _VariantFailed:
            if run.error is None:
                continue
            plain = f"raises {display.error_text(run.error)}"
            shown = _Shown(plain, display.as_code(plain))
        options.offer(shown.plain, _wrong(shown.markdown, feedback, "mistake", mistake.name))
    for text, feedback in plan.distractors:
        options.offer(
            display.plain_of(text),
            _wrong(text, feedback or "This is not what torch does with this code.", "distractor"),
        )
    misses = display.near_misses(key.plain, key.value, digits=getattr(question.answer, "digits", 4))
    if errors and key.plain != display.NO_ERROR:
        misses = [(display.NO_ERROR, "The code does not run to the end."), *misses]
    for plain, feedback in misses:
        if options.full:
            break  # near misses are made up: one that is not needed is not compared (nor counted)
        markdown = plain if plain == display.NO_ERROR else display.as_code(plain)
        options.offer(plain, _wrong(markdown, feedback, "near-miss"))
    if len(options.chosen) < question.num_choices:
        raise _VariantFailed(
            f"only {len(options.chosen)} distinct choices could be made ({question.num_choices} wanted; options "
            "that mean the same count once): add mistakes or distractors, or lower num_choices"
        )
    return options.choices, options.collisions


def _wrong(markdown: str, feedback: str, source: ChoiceSource, mistake: str | None = None) -> Choice:
    return Choice.model_construct(text=markdown, correct=False, feedback=feedback, source=source, mistake=mistake)
