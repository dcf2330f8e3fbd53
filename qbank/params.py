"""Seeded sampling of a question's parameters, with constraints and without duplicates."""

from __future__ import annotations

import itertools
import math
import random
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from qbank.errors import BankError
from qbank.models import Question
from qbank.templating import TemplateProblem, bounded, evaluate

#: Spaces up to this many combinations are enumerated, so the count of valid ones is exact.
ENUMERATE_LIMIT = 20_000
#: The most time the constraints of one question may take to sample its parameters (validation included).
CONSTRAINT_SECONDS = 30.0
#: Random draws per requested variant before a large space is declared too constrained.
DRAWS_PER_VARIANT = 200

Params = dict[str, Any]


@dataclass(frozen=True)
class Sample:
    params: list[Params]
    #: How many distinct valid parameter sets exist, when the space was small enough to count.
    available: int | None


def rng_for(seed: int, *parts: str) -> random.Random:
    """A generator that depends only on the seed and the names given (string seeds hash with SHA-512)."""
    return random.Random(":".join(["qbank", str(seed), *parts]))


def space_size(question: Question) -> int:
    return math.prod(spec.count() for spec in question.params.values())


def satisfies(question: Question, params: Params) -> bool:
    if not question.constraints:
        return True
    try:
        # One evaluation for all the constraints (half the time of one each, over thousands of combinations).
        return bool(evaluate(_all_of(tuple(question.constraints)), params))
    except TemplateProblem:
        pass  # find the constraint that failed, to name it
    for index, constraint in enumerate(question.constraints):
        try:
            if not evaluate(constraint, params):
                return False
        except TemplateProblem as exc:
            raise BankError(str(exc), question=question.id, field=f"constraints[{index}]") from None
    return True


@lru_cache(maxsize=1024)
def _all_of(constraints: tuple[str, ...]) -> str:
    return " and ".join(f"({constraint})" for constraint in constraints)


def sample(question: Question, count: int, seed: int, bank_id: str) -> Sample:
    """Up to `count` distinct parameter sets that satisfy every constraint, chosen by `seed`."""
    try:
        with bounded(CONSTRAINT_SECONDS, "evaluating the constraints"):
            return _sample(question, count, seed, bank_id)
    except TemplateProblem as exc:
        raise BankError(str(exc), question=question.id, field="constraints") from None


def _sample(question: Question, count: int, seed: int, bank_id: str) -> Sample:
    rng = rng_for(seed, bank_id, question.id)
    names = list(question.params)
    specs = [question.params[name] for name in names]
    if space_size(question) <= ENUMERATE_LIMIT:
        valid = _valid(question)
        if not valid:
            raise _unsatisfiable(question)
        drawn = [dict(p) for p in rng.sample(valid, min(count, len(valid)))]  # the cached sets stay untouched
        return Sample(drawn, len(valid))
    chosen: list[Params] = []
    seen: set[tuple[Any, ...]] = set()
    for _ in range(count * DRAWS_PER_VARIANT + 1000):
        # randrange(n) draws as choice() from n listed values would, without listing them.
        combo = tuple(spec.value(rng.randrange(spec.count())) for spec in specs)
        if combo in seen:
            continue
        seen.add(combo)
        params = dict(zip(names, combo, strict=True))
        if satisfies(question, params):
            chosen.append(params)
            if len(chosen) == count:
                break
    if not chosen:
        raise _unsatisfiable(question)
    return Sample(chosen, None)


#: Valid parameter sets of small spaces, by question: validation, its checks and generation all sample the same
#: question, and evaluating constraints over every combination is most of the time a warm run takes.
_VALID: OrderedDict[str, list[Params]] = OrderedDict()
_VALID_KEPT = 256


def _valid(question: Question) -> list[Params]:
    key = question.model_dump_json(include={"id", "params", "constraints"})
    if key in _VALID:
        _VALID.move_to_end(key)
        return _VALID[key]
    names = list(question.params)
    specs = [question.params[name] for name in names]
    combos = itertools.product(*([spec.value(i) for i in range(spec.count())] for spec in specs))
    valid = [p for p in (dict(zip(names, combo, strict=True)) for combo in combos) if satisfies(question, p)]
    _VALID[key] = valid
    if len(_VALID) > _VALID_KEPT:
        _VALID.popitem(last=False)
    return valid


def _unsatisfiable(question: Question) -> BankError:
    rules = " and ".join(f"'{c}'" for c in question.constraints)
    return BankError(
        f"no combination of parameter values satisfies the constraints {rules}; widen a range or relax a rule",
        question=question.id,
        field="constraints",
    )
