"""The answer model against torch's own prints: what reads back the same, and what must not."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qbank.answers import ErrorClaim, dims_of, of_value, parse, parse_error, same, spellings

SETTINGS = settings(max_examples=150, deadline=None)

shapes = st.lists(st.integers(0, 4096), min_size=1, max_size=5)


@SETTINGS
@given(shapes)
def test_torch_prints_of_shapes_read_back_as_their_dims(dims: list[int]) -> None:
    printed = str(torch.Size(dims))
    assert dims_of(printed) == dims
    for spelling in spellings(printed):
        assert same(spelling, printed), spelling
    assert same(str(tuple(dims)), printed)
    assert same(str(dims).replace(" ", ""), printed)


@SETTINGS
@given(shapes, st.data())
def test_shapes_that_differ_in_one_dimension_disagree(dims: list[int], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(dims) - 1))
    other = list(dims)
    other[index] += data.draw(st.integers(1, 50))
    assert not same(str(torch.Size(other)), str(torch.Size(dims)))
    assert not same(str(tuple(other)), str(torch.Size(dims)))
    assert not same(str(torch.Size(dims[:-1])), str(torch.Size(dims)))


small_floats = st.floats(-1e4, 1e4, allow_nan=False).map(lambda x: x if abs(x) > 1e-3 or x == 0 else 0.0)
tensor_values = st.lists(small_floats, min_size=1, max_size=6)


def _tensor(values: list[float], rows: int, grad: bool, dtype: torch.dtype) -> torch.Tensor:
    t = torch.tensor(values, dtype=dtype)
    if rows > 1 and len(values) % rows == 0:
        t = t.reshape(rows, -1)
    if grad:
        t = t.requires_grad_() * 1  # prints with grad_fn=<MulBackward0>
    return t


@SETTINGS
@given(tensor_values, st.sampled_from([1, 2, 3]), st.booleans(), st.sampled_from([torch.float32, torch.float64]))
def test_torch_prints_of_small_tensors_read_back_as_their_values(
    values: list[float], rows: int, grad: bool, dtype: torch.dtype
) -> None:
    t = _tensor(values, rows, grad, dtype)
    printed = repr(t)
    # torch's print, as a claim, agrees with the values it rounds; on one line it is the same answer.
    assert same(printed, of_value(t.tolist()), precision="coarser"), printed
    assert same(" ".join(printed.split()), printed)
    assert same(str(t.detach().tolist()), printed, precision="coarser")


@SETTINGS
@given(tensor_values, st.data())
def test_tensors_that_differ_in_one_value_disagree(values: list[float], data: st.DataObject) -> None:
    t = torch.tensor(values, dtype=torch.float64)
    index = data.draw(st.integers(0, len(values) - 1))
    changed = t.clone()
    changed[index] += 0.01 + 0.01 * abs(float(t[index]))
    assert not same(repr(changed), repr(t)), (repr(changed), repr(t))
    assert not same(str(changed.tolist()), repr(t))


@SETTINGS
@given(st.lists(st.integers(-1000, 1000), min_size=1, max_size=6), st.lists(st.booleans(), min_size=1, max_size=6))
def test_integer_and_bool_tensors_read_back(ints: list[int], bools: list[bool]) -> None:
    assert same(repr(torch.tensor(ints)), str(ints))
    assert same(repr(torch.tensor(bools)), str(bools))
    assert same(repr(torch.tensor(bools)), str(bools).lower())  # JSON's spelling
    flipped = [not b for b in bools]
    assert not same(repr(torch.tensor(flipped)), str(bools))


@pytest.mark.parametrize(
    ("claim", "printed"),
    [
        ("tensor([[8.]])", "tensor([[8.]], grad_fn=<MmBackward0>)"),
        ("(1, 6, 28, 28)", "torch.Size([1, 6, 28, 28])"),
        ("(50, 512)", "torch.Size([50, 512])"),
        ("50 x 512", "torch.Size([50, 512])"),
        ("[[1.0, 2.0], [3.0, 4.0]]", "tensor([[1., 2.],\n        [3., 4.]])"),
        ("tensor([[1.,2.],[3.,4.]])", "tensor([[1., 2.],\n        [3., 4.]])"),
        ("tensor([0.5000], dtype=torch.float64)", "tensor([0.5000], dtype=torch.float64, requires_grad=True)"),
        ("0.269", "0.26894142136999510"),
        ("approximately 0.27", "0.26894142136999510"),
        ("≈ 2.3", "tensor(2.3026)"),
        ("[[-1.0, -1.0, -1.0], ...]", "tensor([[-1.0000, -1.0000, -1.0000],\n        [ 0.5000,  0.5000,  0.5000]])"),
        ("1e-05", "1.0000e-05"),
        ("none", "None"),
    ],
)
def test_right_keys_in_teachers_spellings_agree(claim: str, printed: str) -> None:
    assert same(claim, printed, precision="coarser")


@pytest.mark.parametrize(
    ("claim", "printed"),
    [
        ("tensor([[9.]])", "tensor([[8.]], grad_fn=<MmBackward0>)"),
        ("(1, 6, 28, 27)", "torch.Size([1, 6, 28, 28])"),
        ("(6, 1, 28, 28)", "torch.Size([1, 6, 28, 28])"),
        ("[[1.0,2.0],[3.0,5.0]]", "tensor([[1., 2.],\n        [3., 4.]])"),
        ("0.26", "0.26894142136999510"),
        ("8", "8.4"),
        ("True", "False"),
        ("hidden size", "hidden_size"),
    ],
)
def test_keys_with_a_wrong_value_disagree(claim: str, printed: str) -> None:
    assert not same(claim, printed, precision="coarser")
    assert not same(claim, printed)


def test_claims_are_read_at_their_own_precision_and_options_at_the_finer_one() -> None:
    assert same("0.269", "0.26894", precision="coarser")
    assert not same("0.269", "0.26894")
    # Two printed options: 27.0 is not 27.0327, however the claim rule would read "27.0".
    assert same("27.0", "27.0327", precision="coarser")
    assert not same("27.0", "27.0327")
    assert not same("0.3", "0.2689")  # a typed answer must match the key as precisely as it is shown
    assert same("-1.0", "-1.0000") and same("8", "8.")


def test_a_tolerance_widens_the_comparison() -> None:
    assert not same("2.5", "2.6")
    assert same("2.5", "2.6", tolerance=0.1)


def test_words_compare_with_whitespace_normalized() -> None:
    assert same("the  hidden\nstate", "the hidden state")
    assert not same("the hidden state", "the cell state")


def _raised(code: str) -> tuple[str, str]:
    try:
        exec(code, {"torch": torch, "nn": torch.nn})
    except Exception as exc:
        return type(exc).__name__, str(exc)
    raise AssertionError("the snippet ran without an error")


REAL_ERRORS = [
    "nn.GRU(10, 20)(torch.randn(5, 3, 7))",
    "torch.randn(2, 3) @ torch.randn(2, 3)",
    "nn.Conv2d(3, 8, 3)(torch.randn(1, 4, 8, 8))",
    "nn.CrossEntropyLoss()(torch.randn(4, 3), torch.randn(4))",
    "torch.randn(2, 3).view(4)",
]


@pytest.mark.parametrize("code", REAL_ERRORS)
def test_error_claims_in_any_spelling_agree_with_the_real_error(code: str) -> None:
    kind, message = _raised(code)
    actual = f"{kind}: {message}"
    first_line = f"{kind}: {message.splitlines()[0]}"
    for claim in (kind, f"raises a {kind}", f"Raises an {kind}.", f"{kind}: {message[:20]}…", first_line):
        assert same(claim, actual, errors=True), claim
        assert same(claim, actual, errors=True, precision="coarser"), claim
    assert not same("no error", actual, errors=True)
    assert not same("TypeError" if kind != "TypeError" else "ValueError", actual, errors=True)


def test_error_messages_that_differ_in_a_number_disagree() -> None:
    actual = "RuntimeError: input.size(-1) must be equal to input_size. Expected 10, got 7"
    assert same("RuntimeError: input.size(-1) must be equal to input_size.", actual, errors=True)
    assert not same("RuntimeError: input.size(-1) must be equal to input_size. Expected 7, got 10", actual, errors=True)


@pytest.mark.parametrize(
    "spelling", ["none", "None", "no error", "No error: the code runs to the end.", "no exception"]
)
def test_no_error_in_any_spelling(spelling: str) -> None:
    assert parse_error(spelling) == ErrorClaim(None)


def test_texts_that_are_not_error_claims() -> None:
    assert parse_error("The hidden size is wrong") is None
    assert parse_error("torch.Size([2, 3])") is None
    # Outside error questions, `None` is Python's None.
    assert same("None", of_value(None))
    assert not isinstance(parse("None"), ErrorClaim)


def test_nan_and_infinity() -> None:
    assert same("nan", of_value(math.nan))
    assert not same("nan", "0.5")
    assert same("tensor([inf, -inf])", "[inf, -inf]")
    assert not same("inf", "-inf")


def test_brackets_nested_too_deeply_are_compared_as_words() -> None:
    deep = "[" * 50_000 + "]" * 50_000
    assert same(deep, deep)
    assert not same(deep, "[1]")
    nested: list[object] = []
    for _ in range(5_000):
        nested = [nested]
    assert not same(of_value(nested), "[]")


def test_a_shape_typed_with_a_lower_case_size_is_the_same_shape() -> None:
    # Moodle accepts `torch.size([8, 5, 8])` (it compares case-blind); it means the shape, so qbank agrees.
    assert same("torch.size([8, 5, 8])", "torch.Size([8, 5, 8])")
    assert same("SIZE([8, 5, 8])", "(8, 5, 8)")
    assert not same("torch.size([8, 5, 9])", "torch.Size([8, 5, 8])")
