"""FeatureSchema: kinds, dtypes, observed ranges and cost units of the user's raw columns."""

import numpy as np
import pandas as pd
import pytest

from skct.constraints import KINDS, FeatureSchema


@pytest.fixture
def frame():
    return pd.DataFrame({
        "income": [1200.5, 3400.0, 560.25, 980.0],
        "children": np.array([0, 2, 3, 1], dtype=np.int64),
        "phone": [1, 2, 2, 1],
        "owner": [True, False, True, True],
        "job": ["clerk", "nurse", "clerk", "manager"],
        "grade": pd.Categorical(["b", "a", "c", "b"], categories=["a", "b", "c"], ordered=True),
        "city": pd.Categorical(["x", "y", "x", "x"]),
        "score": [1.0, 2.0, 5.0, 3.0],  # integral floats (HELOC's counts are stored like this)
        "pixel": [-1.0, -1.0, -1.0, -1.0],
    })


def test_inferred_kinds(frame):
    schema = FeatureSchema.from_data(frame)
    assert schema.kinds.tolist() == ["continuous", "integer", "binary", "binary", "categorical",
                                     "ordinal", "categorical", "integer", "continuous"]
    assert set(schema.kinds) <= set(KINDS)
    assert schema.names.tolist() == list(frame.columns)
    assert len(schema) == 9 and schema[1].name == "children"


def test_observed_ranges_levels_and_dtypes(frame):
    schema = FeatureSchema.from_data(frame)
    by = {c.name: c for c in schema}
    assert (by["income"].lower, by["income"].upper) == (560.25, 3400.0)
    assert by["children"].nonnegative and not by["pixel"].nonnegative
    assert by["phone"].levels == (1.0, 2.0)
    assert by["owner"].levels == (False, True) and (by["owner"].lower, by["owner"].upper) == (0, 1)
    assert by["grade"].levels == ("a", "b", "c") and not by["grade"].numeric
    assert by["job"].levels == ("clerk", "manager", "nurse")
    assert np.isnan(by["job"].lower) and not by["job"].nonnegative
    assert by["children"].dtype == "int64" and by["owner"].dtype == "bool"
    assert by["city"].dtype == "category"


def test_mad_with_fallbacks():
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 100.0],  # MAD 1
                      "gain": [0.0, 0.0, 0.0, 0.0, 10.0],  # MAD 0: the std stands in
                      "const": [5.0] * 5})  # both 0: 1.0
    mad = FeatureSchema.from_data(X).mad
    assert mad[0] == 1.0
    assert mad[1] == pytest.approx(np.std([0, 0, 0, 0, 10.0]))
    assert mad[2] == 1.0


def test_overrides_by_name_and_index(frame):
    schema = FeatureSchema.from_data(frame, kinds={"score": "ordinal", 0: "continuous",
                                                   "job": "ordinal"}, integer=["pixel"])
    kinds = dict(zip(schema.names, schema.kinds))
    assert kinds["score"] == "ordinal" and kinds["pixel"] == "integer"
    assert kinds["job"] == "ordinal"
    assert schema[7].levels == (1.0, 2.0, 3.0, 5.0)


def test_arrays_are_named_by_position():
    schema = FeatureSchema.from_data(np.array([[0.5, 1], [1.5, 3], [2.0, 2]]))
    assert schema.names.tolist() == [0, 1]
    assert schema.kinds.tolist() == ["continuous", "integer"]


def test_to_frame(frame):
    table = FeatureSchema.from_data(frame).to_frame()
    assert list(table.index) == list(frame.columns)
    assert table.loc["children", "kind"] == "integer"
    assert table.loc["grade", "n_levels"] == 3
    assert "FeatureSchema(income: continuous" in repr(FeatureSchema.from_data(frame))


def test_bad_overrides(frame):
    with pytest.raises(ValueError, match=r"integer: column 'income' is declared 'integer' but "
                                         r"has fractional values \(e.g. 1200.5\)"):
        FeatureSchema.from_data(frame, integer=["income"])
    with pytest.raises(ValueError, match=r"kinds: column 'children' is declared 'binary' but "
                                         "has 4 distinct"):
        FeatureSchema.from_data(frame, kinds={"children": "binary"})
    with pytest.raises(ValueError, match=r"kinds: column 'job' holds non-numeric values"):
        FeatureSchema.from_data(frame, kinds={"job": "integer"})
    with pytest.raises(ValueError, match=r"kinds: 'count' for column 'job' is not one of"):
        FeatureSchema.from_data(frame, kinds={"job": "count"})
    with pytest.raises(ValueError, match=r"kinds: column 'grade' is a pandas categorical"):
        FeatureSchema.from_data(frame, kinds={"grade": "integer"})
    with pytest.raises(ValueError, match=r"kinds: unknown column 'height'; the data has"):
        FeatureSchema.from_data(frame, kinds={"height": "integer"})
    with pytest.raises(ValueError, match=r"integer: column index 12 is out of range"):
        FeatureSchema.from_data(frame, integer=[12])
    with pytest.raises(ValueError, match=r"kinds: column 'score' is 'ordinal' in kinds but "
                                         "listed in integer"):
        FeatureSchema.from_data(frame, kinds={"score": "ordinal"}, integer=["score"])
    with pytest.raises(ValueError, match="empty"):
        FeatureSchema.from_data(frame.iloc[:0])
