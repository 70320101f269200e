"""The scikit-learn private attributes skct reads, and their fallbacks."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skct._utils._compat import (onehot_dropped_level, onehot_output_levels,
                                 transformer_input_indices)


@pytest.fixture
def frame():
    return pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": ["x", "y", "x", "z"],
                         "c": [0.5, 0.1, 0.2, 0.3], "d": ["p", "q", "p", "q"]})


@pytest.mark.parametrize("spec", [
    (["c", "a"], ["b"]), ([2, 0], [1]), (slice("a", "b"), ["d"]),
    (np.array([True, False, True, False]), [3]),
])
def test_transformer_input_indices_private_and_fallback(frame, spec, monkeypatch):
    num, cat = spec
    scaler = "passthrough" if isinstance(num, slice) else StandardScaler()
    ct = ColumnTransformer([("num", scaler, num), ("cat", OneHotEncoder(), cat)],
                           remainder="drop")
    ct.fit(frame)
    names = ("num", "cat", "remainder")
    expected = {name: transformer_input_indices(ct, name) for name in names}
    # without scikit-learn's private index map, the public column specs give the same answer
    monkeypatch.delattr(ct, "_transformer_to_input_indices")
    for name, idx in expected.items():
        assert transformer_input_indices(ct, name) == idx
    assert sorted(expected["num"] + expected["cat"] + expected["remainder"]) == [0, 1, 2, 3]
    with pytest.raises(KeyError, match="no transformer named 'nope'"):
        transformer_input_indices(ct, "nope")


class _PublicOnly:
    """An encoder exposing only the public fitted attributes (an older scikit-learn)."""

    def __init__(self, encoder):
        self.categories_ = encoder.categories_
        self.drop_idx_ = encoder.drop_idx_


@pytest.mark.parametrize("drop", [None, "first", "if_binary"])
def test_onehot_levels_private_and_fallback(drop):
    X = np.array([["x", "p"], ["y", "q"], ["z", "p"]], dtype=object)
    enc = OneHotEncoder(drop=drop).fit(X)
    for i in range(2):
        private = onehot_output_levels(enc, i).tolist()
        public = onehot_output_levels(_PublicOnly(enc), i).tolist()
        assert private == public
        assert onehot_dropped_level(enc, i) == onehot_dropped_level(_PublicOnly(enc), i)
    widths = [len(onehot_output_levels(enc, i)) for i in range(2)]
    assert sum(widths) == enc.transform(X).shape[1]
    if drop == "first":
        assert onehot_dropped_level(enc, 0) == (True, "x")
    if drop is None:
        assert onehot_dropped_level(enc, 1) == (False, None)


def test_onehot_levels_with_infrequent_categories():
    X = np.array([["a"]] * 5 + [["b"]] * 5 + [["c"], ["d"]], dtype=object)
    enc = OneHotEncoder(min_frequency=3).fit(X)
    assert onehot_output_levels(enc, 0).tolist() == ["a", "b", "infrequent_sklearn"]
    assert enc.transform(X).shape[1] == 3


def test_parameter_validation_tools_come_from_one_place():
    # every skct module imports scikit-learn's private validation tools through skct._utils
    import numbers

    from sklearn.base import BaseEstimator

    from skct._utils import Interval, StrOptions, fit_context, validate_params

    class Est(BaseEstimator):
        _parameter_constraints = {"alpha": [Interval(numbers.Real, 0, None, closed="left")],
                                  "kind": [StrOptions({"a", "b"})]}

        def __init__(self, alpha=1.0, kind="a"):
            self.alpha = alpha
            self.kind = kind

        @fit_context(prefer_skip_nested_validation=True)
        def fit(self, X=None, y=None):
            self.fitted_ = True
            return self

    assert Est().fit().fitted_
    with pytest.raises(ValueError, match="alpha"):
        Est(alpha=-1).fit()

    @validate_params({"n": [Interval(numbers.Integral, 1, None, closed="left")]},
                     prefer_skip_nested_validation=True)
    def f(n):
        return n

    assert f(2) == 2
    with pytest.raises(ValueError, match="'n' parameter"):
        f(0)


def test_no_module_imports_sklearn_privates_directly():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "skct"
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "_compat.py":
            continue
        text = path.read_text(encoding="utf-8")
        for bad in ("sklearn.utils._param_validation", "import _fit_context",
                    ", _fit_context", "_safe_indexing,", "import _safe_indexing"):
            if bad in text:
                offenders.append(f"{path.relative_to(root)}: {bad}")
    assert not offenders, offenders
