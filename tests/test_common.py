"""scikit-learn's estimator checks on every public estimator.

Every estimator skct exposes goes through ``parametrize_with_checks``: the classifier, the
constraints transformer, the explainer (a meta-transformer over a torch classifier) and every
generator. Each expected failure carries the reason it cannot pass.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skct import (
    ActionabilityConstraints,
    CounterfactualExplainer,
    CounterfactualTrainedClassifier,
    ECCCoGenerator,
    ECCoGenerator,
    GenericGenerator,
    GradientFreeGenerator,
    REVISEGenerator,
)

# A small, quick configuration that still learns sklearn's check data sets.
_CT = CounterfactualTrainedClassifier(lr=0.01, max_epochs=40, batch_size=64,
                                      n_counterfactuals=64, max_iter_cf=10, random_state=0)

# The explainer fits a clone of a conventionally trained (all lambdas 0) classifier: fast.
_EXPLAINER = CounterfactualExplainer(
    CounterfactualTrainedClassifier(lambda_div=0.0, lambda_adv=0.0, lambda_reg=0.0, lr=0.01,
                                    max_epochs=10, batch_size=64, random_state=0),
    max_iter=5, random_state=0)

_GENERATORS = [GenericGenerator(), ECCoGenerator(), ECCCoGenerator(),
               REVISEGenerator(vae_epochs=2, random_state=0), GradientFreeGenerator()]

_BLAS = ("torch's float32 matrix products pick different BLAS kernels for different batch "
         "sizes, so logits differ by ~1e-7 between a subset and the full batch; predicted "
         "classes agree, decision_function differs at sklearn's atol=1e-7.")

EXPECTED_FAILED = {
    "CounterfactualTrainedClassifier": {
        "check_methods_subset_invariance": _BLAS,
    },
    "CounterfactualExplainer": {
        "check_transformer_n_iter": (
            "max_iter bounds the counterfactual search of each row at transform time; fit "
            "runs no iterative solver, so there is no n_iter_ to report (explain() returns the "
            "steps taken per row in CounterfactualResult.n_iter)."
        ),
    },
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED.get(type(estimator).__name__, {})


@parametrize_with_checks([ActionabilityConstraints(), _CT, _EXPLAINER, *_GENERATORS],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
