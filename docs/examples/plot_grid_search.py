"""
=====================================================================
Choosing the CT weights with GridSearchCV and counterfactual scorers
=====================================================================

:class:`~skct.CounterfactualTrainedClassifier` is a scikit-learn estimator, so its weights
``lambda_div`` and ``lambda_adv`` can be tuned with :class:`~sklearn.model_selection.GridSearchCV`.
Accuracy alone cannot choose them (CT is not meant to improve it); the counterfactual scorers
of :mod:`skct.evaluation` score what CT is for: on each validation fold they generate
counterfactuals for the fitted model and return a metric of :mod:`skct.metrics`, negated when
lower is better.
"""

# %%
# Data, estimator and scorers
# ---------------------------
# The synthetic credit example with ``age`` immutable. Every scorer uses the same generation
# settings (ECCo, the other class as target, the same constraints), so in a multi-metric
# search they share one counterfactual search per fold and candidate.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skct import ActionabilityConstraints, CounterfactualTrainedClassifier
from skct.datasets import make_credit_example
from skct.evaluation import make_counterfactual_scorer

data = make_credit_example(n_samples=600, random_state=0)
X, y = data.data, data.target
constraints = ActionabilityConstraints(mutability={"age": "none"})

clf = CounterfactualTrainedClassifier(lambda_reg=0.1, constraints=constraints, max_epochs=15,
                                      lr=0.01, batch_size=30, n_counterfactuals=300,
                                      random_state=0)
generation = dict(generator="ecco", target="opposite", constraints=constraints, max_iter=50)
scoring = {
    "accuracy": "accuracy",
    "cf_validity": make_counterfactual_scorer("validity", **generation),
    "cf_cost": make_counterfactual_scorer("cost", **generation),
    "cf_implausibility": make_counterfactual_scorer("implausibility", **generation),
}
print(scoring["cf_implausibility"])

# %%
# The grid and the refit rule
# ---------------------------
# The first candidate is conventional training (all three weights zero); the others vary the
# contrastive divergence and adversarial weights with the ridge weight fixed at 0.1. ``refit``
# is a callable: among the candidates whose mean accuracy is within one point of the best, it
# picks the one with the most plausible counterfactuals.
param_grid = [
    {"lambda_div": [0.0], "lambda_adv": [0.0], "lambda_reg": [0.0]},
    {"lambda_div": [0.25, 0.5, 1.0], "lambda_adv": [0.0, 0.25]},
]


def most_plausible_accurate(cv_results):
    accuracy = np.asarray(cv_results["mean_test_accuracy"])
    candidates = np.flatnonzero(accuracy >= accuracy.max() - 0.01)
    plausibility = np.asarray(cv_results["mean_test_cf_implausibility"])[candidates]
    return int(candidates[np.argmax(plausibility)])  # scores are negated distances


search = GridSearchCV(clf, param_grid, scoring=scoring, refit=most_plausible_accurate,
                      cv=StratifiedKFold(3, shuffle=True, random_state=0))
search.fit(X, y)

results = pd.DataFrame(search.cv_results_)
columns = {"param_lambda_div": "lambda_div", "param_lambda_adv": "lambda_adv",
           "param_lambda_reg": "lambda_reg", "mean_test_accuracy": "accuracy",
           "mean_test_cf_validity": "validity", "mean_test_cf_cost": "-cost",
           "mean_test_cf_implausibility": "-implausibility"}
table = results[list(columns)].rename(columns=columns)
table["lambda_reg"] = table["lambda_reg"].fillna(0.1)
print(table.round(3).to_string(index=False))
print("chosen:", search.best_params_)

# %%
# Accuracy and plausibility of every candidate
# --------------------------------------------
fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
implaus = -table["-implausibility"]
ax.scatter(implaus, table["accuracy"], s=60, c="tab:blue")
for _, row in table.iterrows():
    if row.lambda_div == 0 and row.lambda_adv == 0 and row.lambda_reg == 0:
        label = "conventional"
    else:
        label = f"div={row.lambda_div:g}, adv={row.lambda_adv:g}"
    below = row.lambda_adv == 0  # labels of the two adv values on either side of the point
    ax.annotate(label, (-row["-implausibility"], row.accuracy), textcoords="offset points",
                xytext=(6, -11 if below else 5), fontsize=8)
best = search.best_index_
ax.scatter(implaus[best], table["accuracy"][best], s=200, facecolors="none",
           edgecolors="tab:red", linewidths=2, label="refit choice")
ax.axhline(table["accuracy"].max() - 0.01, color="grey", ls="--", lw=1,
           label="best accuracy - 0.01")
ax.margins(x=0.25, y=0.12)
ax.set_xlabel("implausibility of counterfactuals (validation folds, lower is better)")
ax.set_ylabel("accuracy (validation folds)")
ax.legend(loc="lower right", fontsize="small")
plt.show()

# %%
# The refitted best model is an ordinary fitted estimator:
print(search.best_estimator_)
print(f"training accuracy of the chosen model: {search.best_estimator_.score(X, y):.3f}")
