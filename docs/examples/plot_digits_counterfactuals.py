"""
=====================================================================
Digits: counterfactuals before and after counterfactual training
=====================================================================

The paper shows MNIST counterfactuals of conventionally and counterfactually trained models.
This example does the same, small enough to run in seconds, on scikit-learn's 8x8 digits:
the same multi-layer perceptron is trained conventionally and with counterfactual training
(CT), and both are explained with the same ECCo generator. Each row shows a test image and its
counterfactuals toward three target classes.
"""

# %%
# Data
# ----
# Pixels are scaled to [-1, 1] and every pixel is bounded to that range during the searches
# (``bounds`` of :class:`~skct.ActionabilityConstraints`, keyed by column index here since the
# data is a plain array).
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skct import ActionabilityConstraints, CounterfactualExplainer, CounterfactualTrainedClassifier
from skct.metrics import implausibility
from skct.plotting import ImageCounterfactualDisplay

X, y = load_digits(return_X_y=True)
X = (X / 8.0 - 1.0).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                    random_state=0)
pixels = ActionabilityConstraints(bounds={j: (-1.0, 1.0) for j in range(X.shape[1])})
print(f"{X_train.shape[0]} training and {X_test.shape[0]} test images of {X.shape[1]} pixels")

# %%
# Conventional training and counterfactual training
# -------------------------------------------------
# Both models are the same MLP with one hidden layer of 64 units, trained for 40 epochs with
# the same seed. CT generates 1000 ECCo counterfactuals (toward random other classes) per
# epoch and adds the contrastive divergence, ridge and adversarial terms with the paper's
# weights.
common = dict(hidden_layer_sizes=(64,), max_epochs=40, lr=3e-3, batch_size=64,
              constraints=pixels, random_state=0)
models = {
    "conventional": CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
                                                    **common),
    "counterfactual training": CounterfactualTrainedClassifier(
        lambda_div=0.5, lambda_adv=0.25, lambda_reg=0.1, n_counterfactuals=1000, **common),
}
for name, clf in models.items():
    clf.fit(X_train, y_train)
    print(f"{name}: test accuracy {clf.score(X_test, y_test):.3f}")

# %%
# The training history records the CT terms per epoch (and the share of counterfactuals that
# reached their target during training).
history = models["counterfactual training"].history_
print(pd.DataFrame({k: history[:, k] for k in
                    ("train_loss", "train_ce", "train_div", "train_reg", "train_adv",
                     "cf_valid")}).iloc[[0, 9, 19, 39]].round(3))

# %%
# Counterfactuals of both models
# ------------------------------
# One test image of the digits 0, 4 and 7, each explained toward 1, 3 and 8 with ECCo. Titles
# of counterfactuals that did not reach the 0.75 threshold would be red.
factuals = X_test[[np.flatnonzero(y_test == d)[0] for d in (0, 4, 7)]]
explainers = {}
for name, clf in models.items():
    explainers[name] = CounterfactualExplainer(clf, generator="ecco", constraints=pixels,
                                               max_iter=100, random_state=0).fit(X_train,
                                                                                 y_train)
    ImageCounterfactualDisplay.from_explainer(explainers[name], factuals, targets=[1, 3, 8],
                                              image_shape=(8, 8), name=name)
plt.show()

# %%
# How plausible are they?
# -----------------------
# Explain 200 test images toward a random other class and measure the implausibility of the
# valid counterfactuals: their mean L1 distance to training images of the target class (lower
# means closer to real digits of that class).
rows = []
for name, explainer in explainers.items():
    result = explainer.explain(X_test[:200])
    ok = result.valid
    rows.append({"model": name, "valid": ok.mean(),
                 "implausibility": implausibility(result.counterfactuals_model[ok],
                                                  result.target_index[ok], X_train, y_train,
                                                  random_state=0)})
print(pd.DataFrame(rows).round(3).to_string(index=False))
