"""What the explainer is given is never written to, whatever pandas hands out."""

import pickle

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skct import CounterfactualExplainer, CounterfactualTrainedClassifier


def _frame(n=200, seed=0):
    rng = np.random.RandomState(seed)
    job = rng.choice(["clerk", "manager", "nurse"], n)
    frame = pd.DataFrame({"income": rng.gamma(4.0, 10.0, n).round(2), "job": job})
    score = (frame["income"] - 40) / 15 + 1.5 * (job == "manager") - 1.0 * (job == "clerk")
    return frame, (score + 0.3 * rng.randn(n) > 0).astype(int).to_numpy()


def test_unpickled_string_columns_are_not_modified():
    # an unpickled string column can hand out its own buffer from to_numpy(copy=True) (pandas
    # 3): the explainer once wrote counterfactual levels into the user's frame through it, and
    # counted no change for those rows
    frame, y = _frame()
    ct = ColumnTransformer([("num", StandardScaler(), ["income"]),
                            ("cat", OneHotEncoder(sparse_output=False), ["job"])])
    pipe = make_pipeline(ct, CounterfactualTrainedClassifier(
        lambda_div=0.0, lambda_adv=0.0, lambda_reg=0.0, max_epochs=30, lr=0.01, batch_size=32,
        random_state=0)).fit(frame, y)
    rejected = pickle.loads(pickle.dumps(frame[pipe.predict(frame) == 0]))
    before = rejected.copy(deep=True)
    ex = CounterfactualExplainer(pipe, target=1, random_state=0).fit(frame, y)
    res = ex.explain(rejected)
    pd.testing.assert_frame_equal(rejected, before)
    changed_job = (res.counterfactuals["job"].astype(object).to_numpy()
                   != before["job"].astype(object).to_numpy())
    assert changed_job.any()  # the case that matters: some rows do change category
    assert (res.n_changed[changed_job] >= 1).all()
