"""The classifier's messages: name the column or parameter, say what to do, plain text logs."""

import io
import sys

import numpy as np
import pandas as pd
import pytest

from skct import CounterfactualTrainedClassifier

_QUICK = dict(max_epochs=1, n_counterfactuals=20, random_state=0)


def _data(n=60):
    rng = np.random.RandomState(0)
    X = rng.randn(n, 2)
    return X, (X[:, 0] > 0).astype(int)


def test_object_column_is_named_with_the_encoder_to_use():
    X, y = _data()
    frame = pd.DataFrame({"a": X[:, 0], "colour": np.where(X[:, 1] > 0, "c", "d")})
    with pytest.raises(ValueError, match=r"column 'colour' holds text \(e.g. '[cd]'\)") as err:
        CounterfactualTrainedClassifier(**_QUICK).fit(frame, y)
    assert "OneHotEncoder" in str(err.value) and "ColumnTransformer" in str(err.value)


def test_numbers_stored_as_strings_are_rejected():
    X, y = _data()
    frame = pd.DataFrame({"a": X[:, 0].astype(str), "b": X[:, 1]})
    with pytest.raises(ValueError, match="column 'a' holds numbers stored as strings"):
        CounterfactualTrainedClassifier(**_QUICK).fit(frame, y)
    with pytest.raises(ValueError, match="X contains numbers stored as strings"):
        CounterfactualTrainedClassifier(**_QUICK).fit(X.astype(str), y)


def test_strings_at_prediction_are_rejected():
    X, y = _data()
    clf = CounterfactualTrainedClassifier(**_QUICK).fit(X, y)
    with pytest.raises(ValueError, match="numbers stored as strings"):
        clf.predict(X.astype(str))


def test_numeric_object_arrays_still_work():
    X, y = _data()
    clf = CounterfactualTrainedClassifier(**_QUICK).fit(X.astype(object), y)
    assert clf.predict(X.astype(object)).shape == (60,)


@pytest.mark.parametrize("labels", [pd.Series([1, "a"] * 30),
                                    np.array([1, "a"] * 30, dtype=object)])
def test_mixed_label_types_give_a_clear_error(labels):
    X, _ = _data()
    with pytest.raises(ValueError, match=r"y mixes label types \(number and str"):
        CounterfactualTrainedClassifier(**_QUICK).fit(X, labels)


def test_values_beyond_float32_say_float32():
    X, y = _data()
    with pytest.raises(ValueError, match="too large for float32") as err:
        CounterfactualTrainedClassifier(**_QUICK).fit(X * 1e300, y)
    assert "float64" not in str(err.value)
    clf = CounterfactualTrainedClassifier(**_QUICK).fit(X, y)
    with pytest.raises(ValueError, match="too large for float32"):
        clf.predict(X * 1e300)


def test_verbose_log_is_plain_text_when_not_a_terminal(capsys):
    X, y = _data()
    CounterfactualTrainedClassifier(verbose=1, max_epochs=3, n_counterfactuals=20,
                                    random_state=0).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "\x1b[" not in out


def test_verbose_log_keeps_colours_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.delenv("NO_COLOR", raising=False)
    X, y = _data()
    CounterfactualTrainedClassifier(verbose=1, max_epochs=3, n_counterfactuals=20,
                                    random_state=0).fit(X, y)
    assert "\x1b[" in terminal.getvalue()
