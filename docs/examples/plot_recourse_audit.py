"""
=====================================================================
A recourse audit on Adult
=====================================================================

Who, among the people a model turns down, can reach the desired decision, at which cost, and
by changing what? :func:`skct.evaluation.recourse_audit` answers this per group: it searches a
counterfactual for every audited row under actionability constraints and reports, per row,
whether it is valid, what it costs and which original columns it changes, and, per group
(here sex and age band), the share with recourse, its cost and the gaps between groups.

The model is a :class:`~sklearn.pipeline.Pipeline` of the Adult loader's preprocessing
(standardisation and one-hot encoding) and a :class:`~skct.CounterfactualTrainedClassifier`;
the audit works on the raw columns. The data is read from ``$SKCT_DATA_HOME`` (or the default
locations, see :func:`skct.datasets.get_data_home`).
"""

# %%
# Data and constraints
# --------------------
# 2000 rows of the Adult training file; the target is income above 50K (1, the desired
# decision). Age, sex, race, marital status, relationship and native country are immutable,
# ``fnlwgt`` (a census sampling weight, not a property of the person) too. The years of
# education (``education-num``) can only increase; the categorical ``education`` encodes the
# same level, so it is held fixed to avoid contradictory changes of the two columns. The
# constraints are written once, with raw column names: the audit's search resolves them
# through the ``ColumnTransformer``, and so does the classifier during CT (it sees the
# transformed columns, with names, thanks to ``set_output(transform="pandas")``).
# ``categorical`` tells the classifier which one-hot columns form one feature, so that its
# training-time counterfactuals keep exactly one level per categorical feature (the audit's
# explainer finds the encoder's groups by itself).
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.pipeline import make_pipeline

from skct import ActionabilityConstraints, CounterfactualTrainedClassifier
from skct.evaluation import bands, recourse_audit
from skct.datasets import load_adult

pd.set_option("display.width", 130)
pd.set_option("display.max_columns", 12)
pd.set_option("display.max_colwidth", 60)

adult = load_adult()  # data_home: $SKCT_DATA_HOME, else ../shared/data
X = adult.data.sample(2000, random_state=0)
y = adult.target.loc[X.index]
print(X.shape, f"{y.mean():.1%} earn >50K")

constraints = ActionabilityConstraints(
    mutability={"age": "none", "sex": "none", "race": "none", "marital-status": "none",
                "relationship": "none", "native-country": "none", "fnlwgt": "none",
                "education": "none", "education-num": "increase"},
    categorical=adult.categorical_features,
)

# %%
# The model
# ---------
# A counterfactually trained MLP, ten epochs (a real audit would train longer, on all rows).
clf = CounterfactualTrainedClassifier(lambda_div=0.5, lambda_adv=0.25, lambda_reg=0.1,
                                      constraints=constraints, max_epochs=10, lr=3e-3,
                                      batch_size=64, n_counterfactuals=500, random_state=0)
model = make_pipeline(adult.preprocessor, clf).set_output(transform="pandas").fit(X, y)
print(f"training accuracy {model.score(X, y):.3f}")

# %%
# The audit
# ---------
# Audit the first 300 people the model turns down, toward the desired class 1, grouped by sex
# and by age band. ``reference=X`` fits the explainer's domain bounds on the training rows.
rejected = X[model.predict(X) == 0].iloc[:300]
report = recourse_audit(
    model, rejected, target=1, constraints=constraints, reference=X,
    groups={"sex": "sex", "age band": bands("age", [0, 30, 50, 120])},
    generator="generic", max_iter=100, random_state=0)
print(report)

# %%
# Per group: the share with recourse (a valid counterfactual, inside the domain in the user's
# units with values of each column's kind, that respects the constraints), next to it the
# median number of columns that recourse changes, the median and mean cost of that recourse
# (L1 in the user's units, each column over its median absolute deviation; a changed category
# counts 1) and the features most often changed. The ``gap`` rows give the largest minus the
# smallest group value.
print(report.summary().drop(columns="top_changed").round(3))

# %%
# Which group is best and worst off, for each statistic:
print(report.gaps().round(3))

# %%
# One row per audited person: whether there is recourse (and if not, why: ``reason`` names
# the columns), its cost and the changes it asks for, in the original columns and units.
# Integer columns such as ``education-num`` come back as integers.
print(report.rows_[["sex", "age band", "recourse", "reason", "cost", "n_changed",
                    "changes"]].head())

# %%
# Why the other rows have no recourse, per group (a row can have several reasons):
print(report.reason_counts())

# %%
# The cost of recourse and how often each feature must change, per group:
report.plot(top=8)
plt.show()

# %%
# Immutable features never change, and the constraints are rechecked on the returned
# counterfactuals in the original columns (``in_domain``, ``actionable``), not just trusted:
print(report.checked_constraints_)
print("age unchanged:", bool((report.counterfactuals_["age"] == rejected["age"]).all()))
print("all actionable:", bool(report.rows_["actionable"].all()))
print("all in the domain:", bool(report.rows_["in_domain"].all()))

# %%
# :meth:`~skct.evaluation.RecourseAuditReport.to_html` writes the whole report (settings, tables,
# figure, individual rows) as one self-contained HTML file.
