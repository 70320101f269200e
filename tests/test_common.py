"""scikit-learn's estimator checks on every public estimator."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skct import ActionabilityConstraints, CounterfactualTrainedClassifier

# A small, quick configuration that still learns sklearn's check data sets.
_CT = CounterfactualTrainedClassifier(lr=0.01, max_epochs=40, batch_size=64,
                                      n_counterfactuals=64, max_iter_cf=10, random_state=0)

EXPECTED_FAILED = {
    "CounterfactualTrainedClassifier": {
        "check_methods_subset_invariance": (
            "torch's float32 matrix products pick different BLAS kernels for different batch "
            "sizes, so logits differ by ~1e-7 between a subset and the full batch; predicted "
            "classes agree, decision_function differs at sklearn's atol=1e-7."
        ),
    },
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED.get(type(estimator).__name__, {})


@parametrize_with_checks([ActionabilityConstraints(), _CT],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
