"""CounterfactualTrainedClassifier: the objective, the estimator contract, evidence it works."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import skorch
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

import skct.training._loss as loss_module
import skct.training._search as search_module
from skct import ActionabilityConstraints, CounterfactualExplainer, CounterfactualTrainedClassifier
from skct.training import MLP
from skct.datasets import make_credit_example, make_linearly_separable, make_moons
from skct.metrics import implausibility

CONVENTIONAL = dict(lambda_div=0.0, lambda_adv=0.0, lambda_reg=0.0)


def _blobs(n=300, seed=0):
    rng = np.random.RandomState(seed)
    X = np.r_[rng.randn(n // 2, 2) * 0.7 - 1.5, rng.randn(n - n // 2, 2) * 0.7 + 1.5]
    y = np.r_[np.zeros(n // 2), np.ones(n - n // 2)].astype(int)
    return X.astype(np.float32), y


# -- the objective ------------------------------------------------------------------------


def test_zero_lambdas_is_exactly_conventional_skorch_training():
    """lambda_div = lambda_adv = lambda_reg = 0 gives the weights of a plain skorch net."""
    from skorch import NeuralNet

    X, y = _blobs()
    clf = CounterfactualTrainedClassifier(**CONVENTIONAL, max_epochs=5, lr=0.01, batch_size=32,
                                          random_state=0).fit(X, y)
    seed = int(check_random_state(0).randint(0, 2**31 - 1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        plain = NeuralNet(MLP, module__n_features=2, module__n_classes=2,
                          module__hidden_layer_sizes=(32,), criterion=torch.nn.CrossEntropyLoss,
                          optimizer=torch.optim.Adam, lr=0.01, batch_size=32, max_epochs=5,
                          train_split=None, iterator_train__shuffle=True, verbose=0)
        plain.fit(X, y.astype(np.int64))
    for p, q in zip(clf.logits_module_.parameters(), plain.module_.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert np.isnan(clf.history_[:, "cf_valid"]).all()  # no counterfactual was generated


def test_loss_components_logged_per_epoch(capsys):
    X, y = _blobs()
    clf = CounterfactualTrainedClassifier(max_epochs=3, n_counterfactuals=100, lr=0.01,
                                          verbose=1, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    for key in ("train_loss", "train_div", "train_reg", "train_adv", "cf_valid"):
        assert key in out
        assert len(clf.history_[:, key]) == 3
    valid = np.asarray(clf.history_[:, "cf_valid"])
    assert ((valid >= 0) & (valid <= 1)).all()
    # train_loss is the weighted sum of the components (averaged over batches)
    h = clf.history_[-1]
    total = h["train_ce"] + 0.5 * h["train_div"] + 0.1 * h["train_reg"] + 0.25 * h["train_adv"]
    assert h["train_loss"] == pytest.approx(total, rel=1e-5, abs=1e-6)


def test_burn_in_delays_counterfactual_generation():
    X, y = _blobs()
    clf = CounterfactualTrainedClassifier(max_epochs=4, burn_in=0.5, n_counterfactuals=50,
                                          random_state=0).fit(X, y)
    valid = np.asarray(clf.history_[:, "cf_valid"], dtype=float)
    assert np.isnan(valid[:2]).all() and np.isfinite(valid[2:]).all()
    assert clf.history_[0]["train_div"] == 0.0


def test_counterfactuals_do_not_backpropagate_through_search(monkeypatch):
    """The search sees detached inputs; parameter gradients come only from the loss terms."""
    X, y = _blobs(100)
    seen = {}
    original = search_module.search

    def spy(model, x, target, *args, **kwargs):
        res = original(model, x, target, *args, **kwargs)
        seen["requires_grad"] = res.counterfactuals.requires_grad or res.nascent.requires_grad
        seen["grads"] = [p.grad for p in model.parameters()]
        return res

    monkeypatch.setattr(search_module, "search", spy)
    CounterfactualTrainedClassifier(max_epochs=1, n_counterfactuals=20, random_state=0).fit(X, y)
    assert seen["requires_grad"] is False


def test_nonfinite_loss_is_skipped_with_warning_then_stops(monkeypatch):
    X, y = _blobs(100)
    original = loss_module.ct_loss
    calls = {"n": 0}
    nan_div = torch.tensor([[1.0], [float("nan")], [1.0], [1.0], [float("nan")]])  # div, loss

    def once_nan(logits, idx, weights):
        loss, comps = original(logits, idx, weights)
        calls["n"] += 1
        if calls["n"] == 1:
            return loss * float("nan"), comps * nan_div
        return loss, comps

    def terms_of(loss_fn):  # the folded step's entry: (loss, comps, gradient)
        def terms(logits, idx, weights, native=None):
            found = original_terms(logits, idx, weights, native)
            loss, comps = loss_fn(logits, idx, weights)
            return loss, comps, found[2]
        return terms

    original_terms = loss_module.ct_terms
    monkeypatch.setattr(loss_module, "ct_loss", once_nan)
    monkeypatch.setattr(loss_module, "ct_terms", terms_of(once_nan))
    with pytest.warns(RuntimeWarning, match="Non-finite training loss"):
        clf = CounterfactualTrainedClassifier(max_epochs=2, n_counterfactuals=50,
                                              random_state=0).fit(X, y)
    assert all(torch.isfinite(p).all() for p in clf.logits_module_.parameters())

    def always_nan(logits, idx, weights):
        loss, comps = original(logits, idx, weights)
        return loss * float("nan"), comps * nan_div

    monkeypatch.setattr(loss_module, "ct_loss", always_nan)
    monkeypatch.setattr(loss_module, "ct_terms", terms_of(always_nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(FloatingPointError, match="lambda_reg"):
            CounterfactualTrainedClassifier(max_epochs=3, batch_size=10, n_counterfactuals=100,
                                            random_state=0).fit(X, y)


# -- evidence the method works ------------------------------------------------------------


def test_proposition_3_1_protection_shrinks_immutable_weight():
    """Protecting the immutable feature lowers the model's reliance on it (Prop. 3.1)."""
    rng = np.random.RandomState(0)
    n = 600
    y = np.r_[np.zeros(n // 2), np.ones(n // 2)].astype(int)
    # feature 0 immutable and discriminative, feature 1 mutable and discriminative
    X = np.c_[rng.randn(n) + np.where(y == 1, 1.0, -1.0),
              rng.randn(n) + np.where(y == 1, 1.0, -1.0)].astype(np.float32)
    constraints = ActionabilityConstraints(mutability={0: "none"})
    ratios = {}
    for protect in (True, False):
        clf = CounterfactualTrainedClassifier(
            hidden_layer_sizes=(), constraints=constraints, protect_immutable=protect,
            lambda_div=1.0, lambda_adv=0.0, lambda_reg=0.1, generator="generic",
            max_epochs=40, lr=0.01, batch_size=60, n_counterfactuals=600, random_state=0,
        ).fit(X, y)
        w = clf.logits_module_.net[0].weight.detach().numpy()  # [2 classes, 2 features]
        d = w[1] - w[0]  # the logit difference's weights
        ratios[protect] = abs(d[0]) / abs(d[1])
    assert ratios[True] < ratios[False]


def test_ct_counterfactuals_are_more_plausible_than_conventional():
    X, y = make_moons(n_samples=600, random_state=0)
    X, y = np.asarray(X, np.float32), np.asarray(y)
    common = dict(max_epochs=40, lr=0.01, batch_size=30, decision_threshold=0.75,
                  n_counterfactuals=300, random_state=0)
    scores = {}
    for name, lambdas in {"conventional": CONVENTIONAL,
                          "ct": dict(lambda_div=0.5, lambda_adv=0.25, lambda_reg=0.25)}.items():
        clf = CounterfactualTrainedClassifier(**lambdas, **common).fit(X, y)
        ex = CounterfactualExplainer(clf, generator="generic", target="opposite", max_iter=100,
                                     random_state=0).fit(X, y)
        res = ex.explain(X[:200])
        ok = res.valid
        assert ok.mean() > 0.8
        scores[name] = implausibility(res.counterfactuals_model[ok], res.target_index[ok],
                                      X, y, random_state=0)
    assert scores["ct"] < scores["conventional"]


def test_ct_counterfactuals_never_change_an_immutable_feature():
    data = make_credit_example(n_samples=600, random_state=0)
    X, y = data.data, data.target
    constraints = ActionabilityConstraints(mutability={"age": "none"})
    clf = CounterfactualTrainedClassifier(constraints=constraints, max_epochs=15, lr=0.01,
                                          batch_size=30, random_state=0).fit(X, y)
    # invalid="keep": rows without a valid counterfactual keep the search's last iterate
    ex = CounterfactualExplainer(clf, generator="ecco", target=1, constraints=constraints,
                                 invalid="keep", random_state=0).fit(X, y)
    rejected = X[clf.predict(X) == 0]
    cf = ex.transform(rejected)
    assert (cf["age"].to_numpy() == rejected["age"].to_numpy()).all()
    assert (cf["debt"].to_numpy() != rejected["debt"].to_numpy()).any()


@pytest.mark.parametrize("maker", [make_linearly_separable, make_moons])
def test_ct_accuracy_within_two_points_of_conventional(maker):
    X, y = maker(n_samples=800, random_state=1)
    X, y = np.asarray(X, np.float32), np.asarray(y)
    Xtr, ytr, Xte, yte = X[:600], y[:600], X[600:], y[600:]
    common = dict(max_epochs=30, lr=0.01, batch_size=30, n_counterfactuals=300, random_state=0)
    base = CounterfactualTrainedClassifier(**CONVENTIONAL, **common).fit(Xtr, ytr)
    ct = CounterfactualTrainedClassifier(lambda_div=0.5, lambda_adv=0.25, lambda_reg=0.25,
                                         **common).fit(Xtr, ytr)
    assert ct.score(Xte, yte) >= base.score(Xte, yte) - 0.02


# -- estimator contract -------------------------------------------------------------------


@pytest.mark.parametrize("params, match", [
    (dict(lambda_div=-1.0), "lambda_div"),
    (dict(lambda_adv=-0.1), "lambda_adv"),
    (dict(lambda_reg=-0.1), "lambda_reg"),
    (dict(epsilon=0.0), "epsilon"),
    (dict(decision_threshold=1.0), "decision_threshold"),
    (dict(decision_threshold=0.0), "decision_threshold"),
    (dict(generator="wachter"), "generator"),
    (dict(n_counterfactuals=0), "n_counterfactuals"),
    (dict(max_iter_cf=0), "max_iter_cf"),
    (dict(modul__x=1), "modul__x"),
])
def test_bad_parameters_raise_clear_errors_at_fit(params, match):
    X, y = _blobs(50)
    with pytest.raises(ValueError, match=match):
        CounterfactualTrainedClassifier(max_epochs=1, **params).fit(X, y)


def test_one_class_raises():
    X, _ = _blobs(20)
    with pytest.raises(ValueError, match="one class"):
        CounterfactualTrainedClassifier(max_epochs=1).fit(X, np.zeros(20))


def test_string_labels_pickle_clone_and_reproducibility():
    X, y = _blobs(120)
    labels = np.array(["no", "yes"])[y]
    clf = CounterfactualTrainedClassifier(max_epochs=3, n_counterfactuals=40, random_state=3)
    clf.fit(X.astype(np.float64), labels)
    assert list(clf.classes_) == ["no", "yes"]
    assert set(clf.predict(X)) <= {"no", "yes"}
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    again = clone(clf).fit(X, labels)
    np.testing.assert_array_equal(again.predict_proba(X), proba)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), proba)
    assert clf.n_features_in_ == 2


def test_warm_start_continues_training():
    X, y = _blobs(100)
    clf = CounterfactualTrainedClassifier(max_epochs=2, warm_start=True, n_counterfactuals=30,
                                          random_state=0).fit(X, y)
    first = [p.detach().clone() for p in clf.logits_module_.parameters()]
    clf.fit(X, y)
    assert len(clf.history_) == 4
    assert any(not torch.equal(a, b) for a, b in zip(first, clf.logits_module_.parameters()))


def test_module_routing_and_custom_module():
    class Linear(torch.nn.Module):
        def __init__(self, n_in=2, n_out=2, scale=1.0):
            super().__init__()
            self.lin = torch.nn.Linear(n_in, n_out)
            self.scale = scale

        def forward(self, X):
            return self.lin(X) * self.scale

    X, y = _blobs(100)
    clf = CounterfactualTrainedClassifier(Linear, module__scale=2.0, optimizer__weight_decay=1e-4,
                                          max_epochs=2, n_counterfactuals=30, random_state=0)
    assert clf.get_params()["module__scale"] == 2.0
    clf.set_params(module__scale=3.0)
    clf.fit(X, y)
    assert clf.logits_module_.scale == 3.0
    assert clf.net_.optimizer_.param_groups[0]["weight_decay"] == 1e-4
    assert clone(clf).get_params()["module__scale"] == 3.0


def test_pipeline_with_named_constraints_and_grid_search_n_jobs():
    data = make_credit_example(n_samples=300, random_state=0)
    X, y = data.data, data.target
    clf = CounterfactualTrainedClassifier(
        constraints=ActionabilityConstraints(mutability={"age": "none"}),
        max_epochs=3, n_counterfactuals=50, lr=0.01, random_state=0)
    pipe = make_pipeline(StandardScaler(), clf).set_output(transform="pandas")
    search = GridSearchCV(pipe, {"counterfactualtrainedclassifier__lambda_div": [0.0, 0.5],
                                 "counterfactualtrainedclassifier__lambda_adv": [0.0, 0.25]},
                          cv=2, n_jobs=2)
    search.fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_[-1].constraints_.mutability_.tolist() == ["none", "both"]


def test_named_constraints_without_names_give_a_clear_error():
    data = make_credit_example(n_samples=100, random_state=0)
    clf = CounterfactualTrainedClassifier(
        constraints=ActionabilityConstraints(mutability={"age": "none"}), max_epochs=1)
    pipe = make_pipeline(StandardScaler(), clf)
    with pytest.raises(ValueError, match="set_output"):
        pipe.fit(data.data, data.target)


def test_inputs_not_modified():
    X, y = _blobs(80)
    X0, y0 = X.copy(), y.copy()
    frame = pd.DataFrame(X, columns=["a", "b"])
    CounterfactualTrainedClassifier(max_epochs=2, n_counterfactuals=30, random_state=0).fit(
        frame, y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(frame.to_numpy(), X0)


def test_image_module_with_reshape_on_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.data[:300] / 8.0 - 1.0).astype(np.float32)
    y = digits.target[:300]

    class SmallCNN(torch.nn.Module):
        def __init__(self, n_classes=10):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.out = torch.nn.Linear(4 * 8 * 8, n_classes)

        def forward(self, X):
            h = torch.relu(self.conv(X.reshape(-1, 1, 8, 8)))
            return self.out(h.flatten(1))

    clf = CounterfactualTrainedClassifier(SmallCNN, max_epochs=3, lr=0.01, n_counterfactuals=64,
                                          max_iter_cf=5, random_state=0).fit(X, y)
    assert clf.predict_proba(X).shape == (300, 10)
    assert np.isfinite(np.asarray(clf.history_[:, "train_div"])).all()


def test_train_split_keeps_validation_rows_out_of_the_search(monkeypatch):
    from skorch.dataset import ValidSplit

    X, y = _blobs(200)
    seen = {}
    original = search_module._generate

    def spy(net, state):
        seen["n_rows"] = state.X.shape[0]
        return original(net, state)

    monkeypatch.setattr(search_module, "_generate", spy)
    clf = CounterfactualTrainedClassifier(train_split=ValidSplit(4), max_epochs=2,
                                          n_counterfactuals=500, random_state=0).fit(X, y)
    assert seen["n_rows"] == 150  # 3/4 of the rows: the validation quarter is not used
    assert "valid_loss" in clf.history_[-1]


class _BatchRecorder(skorch.callbacks.Callback):
    """Records the rows of every training batch, per epoch."""

    def initialize(self):
        self.epochs = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.epochs.append([])

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            self.epochs[-1].append(np.asarray(batch[0]).copy())


@pytest.mark.parametrize("ct", [False, True])
def test_shuffle_false_iterates_the_batches_in_row_order(ct):
    X, y = _blobs(100)
    params = {} if ct else CONVENTIONAL
    rec = _BatchRecorder()
    CounterfactualTrainedClassifier(max_epochs=3, batch_size=32, shuffle=False, callbacks=[rec],
                                    n_counterfactuals=20, random_state=0, **params).fit(X, y)
    for batches in rec.epochs:
        np.testing.assert_array_equal(np.concatenate(batches), X.astype(np.float32))
    rec = _BatchRecorder()
    CounterfactualTrainedClassifier(max_epochs=3, batch_size=32, callbacks=[rec],
                                    n_counterfactuals=20, random_state=0, **params).fit(X, y)
    orders = [np.concatenate(b) for b in rec.epochs]
    assert not np.array_equal(orders[0], X.astype(np.float32))  # shuffled by default
    assert not np.array_equal(orders[0], orders[1])


def test_shuffle_is_read_again_by_a_warm_fit():
    X, y = _blobs(64)
    rec = _BatchRecorder()
    clf = CounterfactualTrainedClassifier(max_epochs=1, batch_size=16, warm_start=True,
                                          callbacks=[rec], random_state=0, **CONVENTIONAL)
    clf.fit(X, y)
    clf.set_params(shuffle=False).fit(X, y)
    recorded = [cb for name, cb in clf.net_.callbacks_ if isinstance(cb, _BatchRecorder)][0]
    assert not np.array_equal(np.concatenate(recorded.epochs[0]), X.astype(np.float32))
    np.testing.assert_array_equal(np.concatenate(recorded.epochs[1]), X.astype(np.float32))


def test_iterator_train_shuffle_points_to_the_shuffle_parameter():
    X, y = _blobs(20)
    with pytest.raises(ValueError, match="shuffle parameter"):
        CounterfactualTrainedClassifier(max_epochs=1, iterator_train__shuffle=False).fit(X, y)


def _initial_weights(**params):
    """Module parameters after one epoch at a learning rate too small to move them."""
    X, y = _blobs(40)
    clf = CounterfactualTrainedClassifier(max_epochs=1, lr=1e-12, **CONVENTIONAL, **params)
    return clf.fit(X, y).logits_module_


def test_glorot_init_draws_glorot_weights_and_zero_biases_from_random_state():
    module = _initial_weights(hidden_layer_sizes=(16, 8), weight_init="glorot", random_state=0)
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3
    for layer in linears:
        fan_out, fan_in = layer.weight.shape
        bound = (6.0 / (fan_in + fan_out)) ** 0.5
        assert float(layer.bias.detach().abs().max()) < 1e-9
        w = layer.weight.detach()
        assert float(w.abs().max()) <= bound + 1e-9
        assert float(w.abs().max()) > 0.5 * bound  # spread over the Glorot range
    again = _initial_weights(hidden_layer_sizes=(16, 8), weight_init="glorot", random_state=0)
    other = _initial_weights(hidden_layer_sizes=(16, 8), weight_init="glorot", random_state=1)
    torch_init = _initial_weights(hidden_layer_sizes=(16, 8), random_state=0)
    first = module.net[0].weight
    assert torch.equal(first, again.net[0].weight)
    assert not torch.equal(first, other.net[0].weight)
    assert not torch.equal(first, torch_init.net[0].weight)
    assert float(torch_init.net[0].bias.detach().abs().max()) > 0  # PyTorch's default init


def test_glorot_init_reinitialises_the_linear_layers_of_a_custom_module():
    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)
            self.norm = torch.nn.LayerNorm(2)
            with torch.no_grad():
                self.norm.weight.fill_(3.0)

        def forward(self, X):
            return self.norm(self.lin(X))

    module = _initial_weights(module=Scaled, weight_init="glorot", random_state=0)
    assert float(module.lin.bias.detach().abs().max()) < 1e-9
    assert torch.allclose(module.norm.weight, torch.full((2,), 3.0))  # left as it was


def test_bad_weight_init_and_shuffle_raise_clear_errors():
    X, y = _blobs(20)
    with pytest.raises(ValueError, match="weight_init"):
        CounterfactualTrainedClassifier(max_epochs=1, weight_init="xavier").fit(X, y)
    with pytest.raises(ValueError, match="shuffle"):
        CounterfactualTrainedClassifier(max_epochs=1, shuffle="no").fit(X, y)
