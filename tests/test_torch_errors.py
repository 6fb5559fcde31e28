"""Drop-in means drop-in: bad arguments to every torch-named function, against torch.nn.init itself.

Code written against :mod:`torch.nn.init` that catches its ``ValueError`` or ``TypeError`` must catch
initbook's error for the same call. initbook raises ``ValueError`` for bad values and
``ArgumentTypeError`` for bad types, a subclass of both ``TypeError`` and ``ValueError`` (torch raises
``ValueError`` for many wrong types, e.g. ``calculate_gain(None)``). Where torch fails by accident
(``RuntimeError``, ``NotImplementedError``, ``ZeroDivisionError``, ``AttributeError``) or accepts a bad
value silently, initbook's clear error is the intended difference; ``docs/api.md`` lists these, and the
table below records torch's outcome for each so that the list stays true for the pinned torch.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.init as torch_init

from initbook import init

# torch's outcome for each case is checked against the pinned torch (constraints.txt); the minimum-versions
# job runs older torch, where only the compatibility rule itself is checked.
PINNED_TORCH = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2]) >= (
    2,
    13,
)


def w(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(*shape, dtype=dtype)


LONG = torch.int64
# (function, call on a module: torch.nn.init or initbook.init, torch 2.13's outcome)
CASES = [
    ("calculate_gain", lambda m: m.calculate_gain("leaky_relu", True), "ValueError"),
    ("calculate_gain", lambda m: m.calculate_gain(None), "ValueError"),
    ("calculate_gain", lambda m: m.calculate_gain(3), "ValueError"),
    ("calculate_gain", lambda m: m.calculate_gain("gelu"), "ValueError"),
    ("calculate_gain", lambda m: m.calculate_gain("leaky_relu", "x"), "ValueError"),
    ("calculate_gain", lambda m: m.calculate_gain("leaky_relu", math.nan), "ok"),
    ("uniform_", lambda m: m.uniform_(w(3, 3), "x", 1.0), "TypeError"),
    ("uniform_", lambda m: m.uniform_(w(3, 3), True, 2.0), "ok"),
    ("uniform_", lambda m: m.uniform_(w(3, 3), 1.0, 0.0), "RuntimeError"),
    ("uniform_", lambda m: m.uniform_(w(3, 3), 0.0, math.inf), "RuntimeError"),
    ("uniform_", lambda m: m.uniform_(w(3, 3), math.nan, 1.0), "RuntimeError"),
    ("uniform_", lambda m: m.uniform_(w(3, 3), -1e300, 1e300), "RuntimeError"),
    ("uniform_", lambda m: m.uniform_(w(3, 3, dtype=LONG)), "NotImplementedError"),
    ("uniform_", lambda m: m.uniform_([1.0, 2.0]), "AttributeError"),
    ("normal_", lambda m: m.normal_(w(3, 3), "x"), "TypeError"),
    ("normal_", lambda m: m.normal_(w(3, 3), 0.0, -1.0), "RuntimeError"),
    ("normal_", lambda m: m.normal_(w(3, 3), 0.0, math.nan), "RuntimeError"),
    ("normal_", lambda m: m.normal_(w(3, 3), math.inf), "ok"),
    ("normal_", lambda m: m.normal_(w(3, 3), 0.0, 1e300), "ok"),
    ("normal_", lambda m: m.normal_(w(3, 3, dtype=LONG)), "NotImplementedError"),
    ("trunc_normal_", lambda m: m.trunc_normal_(w(3, 3), mean="x"), "TypeError"),
    ("trunc_normal_", lambda m: m.trunc_normal_(w(3, 3), 0.0, -1.0), "ok"),
    ("trunc_normal_", lambda m: m.trunc_normal_(w(3, 3), 0.0, 0.0), "ZeroDivisionError"),
    ("trunc_normal_", lambda m: m.trunc_normal_(w(3, 3), a=2.0, b=-2.0), "RuntimeError"),
    ("trunc_normal_", lambda m: m.trunc_normal_(w(3, 3), a=math.nan), "RuntimeError"),
    ("trunc_normal_", lambda m: m.trunc_normal_(w(3, 3, dtype=LONG)), "NotImplementedError"),
    ("constant_", lambda m: m.constant_(w(3, 3), "x"), "TypeError"),
    ("constant_", lambda m: m.constant_(w(3, 3), math.nan), "ok"),
    ("constant_", lambda m: m.constant_(w(3, 3, dtype=LONG), 1), "ok"),
    ("constant_", lambda m: m.constant_([1.0], 1.0), "AttributeError"),
    ("ones_", lambda m: m.ones_(w(3, dtype=LONG)), "ok"),
    ("ones_", lambda m: m.ones_("x"), "AttributeError"),
    ("zeros_", lambda m: m.zeros_(w(3, dtype=torch.bool)), "ok"),
    ("zeros_", lambda m: m.zeros_(None), "AttributeError"),
    ("eye_", lambda m: m.eye_(w(3)), "ValueError"),
    ("eye_", lambda m: m.eye_(w(2, 2, 2)), "ValueError"),
    ("eye_", lambda m: m.eye_(w(3, 3, dtype=LONG)), "ok"),
    ("dirac_", lambda m: m.dirac_(w(3, 3)), "ValueError"),
    ("dirac_", lambda m: m.dirac_(w(4, 2, 3), groups=3), "ValueError"),
    ("dirac_", lambda m: m.dirac_(w(4, 2, 3), groups=1.5), "ValueError"),
    ("dirac_", lambda m: m.dirac_(w(4, 2, 3), groups="2"), "TypeError"),
    ("dirac_", lambda m: m.dirac_(w(4, 2, 3), groups=0), "ZeroDivisionError"),
    ("dirac_", lambda m: m.dirac_(w(4, 2, 3, dtype=LONG)), "ok"),
    ("xavier_uniform_", lambda m: m.xavier_uniform_(w(3)), "ValueError"),
    ("xavier_uniform_", lambda m: m.xavier_uniform_(w(3, 3), gain="x"), "TypeError"),
    ("xavier_uniform_", lambda m: m.xavier_uniform_(w(3, 3), gain=-1.0), "RuntimeError"),
    ("xavier_uniform_", lambda m: m.xavier_uniform_(w(3, 3), gain=math.nan), "RuntimeError"),
    ("xavier_uniform_", lambda m: m.xavier_uniform_(w(3, 3, dtype=LONG)), "NotImplementedError"),
    ("xavier_normal_", lambda m: m.xavier_normal_(w(3)), "ValueError"),
    ("xavier_normal_", lambda m: m.xavier_normal_(w(3, 3), gain=None), "TypeError"),
    ("xavier_normal_", lambda m: m.xavier_normal_(w(3, 3), gain=-1.0), "RuntimeError"),
    ("kaiming_uniform_", lambda m: m.kaiming_uniform_(w(3, 3), a="x"), "ValueError"),
    ("kaiming_uniform_", lambda m: m.kaiming_uniform_(w(3, 3), a=True), "ValueError"),
    ("kaiming_uniform_", lambda m: m.kaiming_uniform_(w(3, 3), mode="fan_avg"), "ValueError"),
    ("kaiming_uniform_", lambda m: m.kaiming_uniform_(w(3, 3), nonlinearity="gelu"), "ValueError"),
    ("kaiming_uniform_", lambda m: m.kaiming_uniform_(w(3, 3), nonlinearity=None), "ValueError"),
    ("kaiming_uniform_", lambda m: m.kaiming_uniform_(w(3)), "ValueError"),
    ("kaiming_uniform_", lambda m: m.kaiming_uniform_(w(3, 3), mode=None), "AttributeError"),
    ("kaiming_uniform_", lambda m: m.kaiming_uniform_(w(3, 3, dtype=LONG)), "NotImplementedError"),
    ("kaiming_uniform_", lambda m: m.kaiming_uniform_([[1.0]]), "AttributeError"),
    ("kaiming_normal_", lambda m: m.kaiming_normal_(w(3, 3), a="x"), "ValueError"),
    ("kaiming_normal_", lambda m: m.kaiming_normal_(w(3, 3), mode="in"), "ValueError"),
    ("kaiming_normal_", lambda m: m.kaiming_normal_(w(3, 3), nonlinearity=3), "ValueError"),
    ("kaiming_normal_", lambda m: m.kaiming_normal_(w(3)), "ValueError"),
    ("kaiming_normal_", lambda m: m.kaiming_normal_(w(3, 3), a=None), "ok"),
    ("kaiming_normal_", lambda m: m.kaiming_normal_(w(3, 3), mode=1), "AttributeError"),
    ("kaiming_normal_", lambda m: m.kaiming_normal_(w(3, 3), a=math.nan), "RuntimeError"),
    ("orthogonal_", lambda m: m.orthogonal_(w(3)), "ValueError"),
    ("orthogonal_", lambda m: m.orthogonal_(w(3, 3), gain="x"), "TypeError"),
    ("orthogonal_", lambda m: m.orthogonal_(w(3, 3), gain=-1.0), "ok"),
    ("orthogonal_", lambda m: m.orthogonal_(w(3, 3), gain=math.nan), "ok"),
    ("orthogonal_", lambda m: m.orthogonal_(w(3, 3, dtype=LONG)), "NotImplementedError"),
    ("sparse_", lambda m: m.sparse_(w(3), 0.1), "ValueError"),
    ("sparse_", lambda m: m.sparse_(w(3, 3, 3), 0.1), "ValueError"),
    ("sparse_", lambda m: m.sparse_(w(3, 3), math.nan), "ValueError"),
    ("sparse_", lambda m: m.sparse_(w(3, 3), "x"), "TypeError"),
    ("sparse_", lambda m: m.sparse_(w(3, 3), 0.1, std="x"), "TypeError"),
    ("sparse_", lambda m: m.sparse_(w(3, 3), 1.5), "ok"),
    ("sparse_", lambda m: m.sparse_(w(3, 3), -0.5), "ok"),
    ("sparse_", lambda m: m.sparse_(w(3, 3), 0.1, std=-1.0), "RuntimeError"),
    ("sparse_", lambda m: m.sparse_(w(3, 3, dtype=LONG), 0.1), "NotImplementedError"),
]
COMPATIBLE = ("ValueError", "TypeError")


def outcome(call, module) -> BaseException | None:
    """The exception ``call(module)`` raises, or None; torch's warnings are not the point here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call(module)
        except Exception as error:  # noqa: BLE001  (which exception is the point)
            return error
    return None


def test_every_torch_name_is_in_the_table():
    torch_names = {
        name
        for name in dir(torch_init)
        if (name.endswith("_") or name == "calculate_gain") and not name.startswith("_")
    }
    assert torch_names == {name for name, _, _ in CASES}
    assert all(hasattr(init, name) for name in torch_names)
    # each function has at least one bad value and one bad type
    for name in torch_names:
        expected = [e for n, _, e in CASES if n == name]
        assert len(expected) >= 2, name


@pytest.mark.parametrize(
    ("name", "call", "torch_outcome"), CASES, ids=[f"{case[0]}-{i}" for i, case in enumerate(CASES)]
)
def test_initbook_errors_catch_like_torch(name, call, torch_outcome):
    ours = outcome(call, init)
    assert isinstance(ours, ValueError | TypeError), (name, ours)
    assert str(ours), name  # the message names the bad value
    theirs = outcome(call, torch_init)
    if isinstance(theirs, ValueError | TypeError):
        # the drop-in rule: whatever torch's handler catches, it catches ours
        assert isinstance(ours, type(theirs)), (name, theirs, ours)
    if PINNED_TORCH:
        assert (type(theirs).__name__ if theirs is not None else "ok") == torch_outcome, theirs


def test_documented_differences_are_the_table():
    """docs/api.md's table of differences has one row per case here where torch's error is not compatible.

    Each row names the function, torch's outcome and initbook's exception type; all three are checked.
    """
    text = (Path(__file__).parent.parent / "docs" / "api.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| `.*` \| (\w+(?: \w+)?) \| (\w+) \|$", text, re.MULTILINE)
    documented = sorted(
        (name, "ok" if what == "no error" else what, ours) for name, what, ours in rows
    )
    differences = sorted(
        (name, what, type(outcome(call, init)).__name__)
        for name, call, what in CASES
        if what not in COMPATIBLE
    )
    if not PINNED_TORCH:
        pytest.skip("the table records the pinned torch's outcomes")
    assert documented == differences


def test_argument_type_error_is_both():
    with pytest.raises(TypeError) as caught:
        init.kaiming_uniform_(w(3, 3), a="x")
    assert isinstance(caught.value, ValueError)
    assert "a must be a real number, got 'x'" in str(caught.value)
