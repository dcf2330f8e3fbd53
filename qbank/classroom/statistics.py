"""Item statistics as the LMS defines them, so that qbank's numbers can be checked against the LMS's own.

Moodle (`question/classes/statistics/questions/calculator.php` and the quiz statistics report's calculator): for a
question, over the attempts that include it, with x its mark and y the attempt's other marks (total minus x):
facility = mean(x) / max; standard deviation = sample SD of x / max; discrimination index = 100 · cov(x, y) /
√(var x · var y); discriminative efficiency = 100 · cov(x, y) / cov(sorted x, sorted y) (the largest covariance
those marks allow). For one variant of a random question ("subquestion") y is the attempt's whole total. For the
quiz: coefficient of internal consistency = 100 · p/(p−1) · (1 − Σ var(question marks) / var(totals)), error ratio
= 100 · √(1 − CIC/100), standard error = error ratio · SD(totals) / 100. Variances and covariances are sample ones
(n − 1).

Canvas (`item_analysis/item.rb`): an option's point-biserial = (mean score of those who chose it − mean score of
the others) / SD(scores) · √(p (1 − p)), p the share who chose it, SD the population one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def _sample_cov(x: Sequence[float], y: Sequence[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    return sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / (len(x) - 1)


@dataclass(frozen=True)
class ItemStats:
    """One question (or variant) over the attempts that include it; percentages, None where undefined."""

    attempts: int
    facility: float
    sd: float | None
    discrimination: float | None
    efficiency: float | None


def item_stats(marks: Sequence[float], others: Sequence[float], out_of: float = 1.0) -> ItemStats:
    """Moodle's facility, SD, discrimination index and discriminative efficiency of marks `marks` (each out of
    `out_of`) against the attempts' `others` (the rest of each attempt's marks, or its total for a variant)."""
    count = len(marks)
    if not count:
        return ItemStats(0, math.nan, None, None, None)
    facility = 100 * sum(marks) / count / out_of
    if count < 2:
        return ItemStats(count, facility, None, None, None)
    variance, other_variance = _sample_cov(marks, marks), _sample_cov(others, others)
    covariance = _sample_cov(marks, others)
    most = _sample_cov(sorted(marks), sorted(others))
    discrimination = 100 * covariance / math.sqrt(variance * other_variance) if variance * other_variance else None
    efficiency = 100 * covariance / most if most else None
    return ItemStats(count, facility, 100 * math.sqrt(variance) / out_of, discrimination, efficiency)


@dataclass(frozen=True)
class QuizStats:
    """The quiz as a whole, in percent of the most marks (None where undefined)."""

    attempts: int
    mean: float
    median: float
    sd: float | None
    #: Coefficient of internal consistency (Cronbach's alpha, as a percentage).
    cic: float | None
    error_ratio: float | None
    standard_error: float | None


def quiz_stats(totals: Sequence[float], item_marks: Sequence[Sequence[float]], out_of: float) -> QuizStats:
    """The quiz's statistics from every attempt's total (out of `out_of`) and each question's marks."""
    count = len(totals)
    if not count or not out_of:
        return QuizStats(count, math.nan, math.nan, None, None, None, None)
    mean = 100 * sum(totals) / count / out_of
    median = 100 * statistics.median(totals) / out_of
    if count < 2:
        return QuizStats(count, mean, median, None, None, None, None)
    variance = _sample_cov(totals, totals)
    sd = math.sqrt(variance)
    cic = error_ratio = standard_error = None
    positions = len(item_marks)
    if positions > 1 and variance:
        spread = sum(_sample_cov(marks, marks) for marks in item_marks if len(marks) > 1)
        cic = 100 * positions / (positions - 1) * (1 - spread / variance)
        if cic <= 100:
            error_ratio = 100 * math.sqrt(1 - cic / 100)
            standard_error = error_ratio * sd / out_of  # Moodle's error ratio × SD / 100, as a percentage of the most
    return QuizStats(count, mean, median, 100 * sd / out_of, cic, error_ratio, standard_error)


def point_biserial(chose: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Canvas's point-biserial of an option: how much more those who chose it scored (None where undefined)."""
    count = len(scores)
    picked = [score for score, yes in zip(scores, chose, strict=True) if yes]
    rest = [score for score, yes in zip(scores, chose, strict=True) if not yes]
    if not picked or not rest:
        return None
    sd = statistics.pstdev(scores)
    if not sd:
        return None
    share = len(picked) / count
    return (sum(picked) / len(picked) - sum(rest) / len(rest)) / sd * math.sqrt(share * (1 - share))


def wilson(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval (95 % by default) of a share `successes / trials`."""
    if not trials:
        return 0.0, 1.0
    share = successes / trials
    centre = share + z * z / (2 * trials)
    spread = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    denominator = 1 + z * z / trials
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)
