"""Training reliability: modes restored, Ctrl-C reported, runaway energies, skorch hooks only."""

import warnings

import numpy as np
import pytest
import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping

import skct.training._search as search_module
from skct import CounterfactualTrainedClassifier
from skct.training import CounterfactualNet, FitState


def _blobs(n=300, seed=0):
    rng = np.random.RandomState(seed)
    X = np.r_[rng.randn(n // 2, 2) * 0.7 - 1.5, rng.randn(n - n // 2, 2) * 0.7 + 1.5]
    y = np.r_[np.zeros(n // 2), np.ones(n - n // 2)].astype(int)
    return X.astype(np.float32), y


class _BatchNormNet(torch.nn.Module):
    def __init__(self, n_in=2, n_out=2):
        super().__init__()
        self.hidden = torch.nn.Linear(n_in, 8)
        self.norm = torch.nn.BatchNorm1d(8)
        self.out = torch.nn.Linear(8, n_out)

    def forward(self, X):
        return self.out(torch.relu(self.norm(self.hidden(X))))


# -- the net on skorch's documented hooks ---------------------------------------------------


def test_ct_settings_are_net_parameters_and_no_private_state_is_left():
    X, y = _blobs(100)
    clf = CounterfactualTrainedClassifier(lambda_div=0.7, max_iter_cf=7, max_epochs=2,
                                          n_counterfactuals=30, random_state=0).fit(X, y)
    net = clf.net_
    assert isinstance(net, CounterfactualNet) and isinstance(net, NeuralNet)
    params = net.get_params()
    assert params["lambda_div"] == 0.7 and params["max_iter_cf"] == 7
    assert params["generator"] is clf.generator_ and params["constraints"] is clf.constraints_
    assert net.fit_state_ is None and not hasattr(net, "_ct")
    assert type(net).train_step_single is not NeuralNet.train_step_single  # a thin wrapper
    names = [name for name, _ in net.callbacks_]
    assert names.index("counterfactual_search") < names.index("print_log")
    assert "training_guard" in names


def test_history_keys():
    X, y = _blobs(100)
    clf = CounterfactualTrainedClassifier(max_epochs=2, n_counterfactuals=30,
                                          random_state=0).fit(X, y)
    for key in ("train_loss", "train_ce", "train_div", "train_reg", "train_adv", "cf_valid",
                "cf_steps", "cf_time", "dur"):
        assert key in clf.history_[-1]


def test_fit_state_is_dropped_after_a_failing_fit(monkeypatch):
    X, y = _blobs(100)

    def boom(net, state):
        raise RuntimeError("search failed")

    clf = CounterfactualTrainedClassifier(max_epochs=2, n_counterfactuals=30, random_state=0)
    monkeypatch.setattr(search_module, "_generate", boom)
    with pytest.raises(RuntimeError, match="search failed"):
        clf.fit(X, y)
    assert clf.net_.fit_state_ is None
    monkeypatch.undo()
    assert clf.fit(X, y).net_.fit_state_ is None


def test_warm_start_reads_changed_ct_parameters():
    X, y = _blobs(100)
    clf = CounterfactualTrainedClassifier(max_epochs=2, warm_start=True, n_counterfactuals=30,
                                          random_state=0).fit(X, y)
    clf.set_params(lambda_div=0.0, lambda_adv=0.0, lambda_reg=0.0).fit(X, y)
    assert clf.net_.lambda_div == 0.0
    assert np.isnan(clf.history_[-1]["cf_valid"])  # no search any more


# -- modes ----------------------------------------------------------------------------------


def test_search_keeps_a_frozen_submodule_in_eval_mode():
    """The search's eval mode restores each submodule's own flag, not the parent's."""
    X, y = _blobs(100)
    clf = CounterfactualTrainedClassifier(_BatchNormNet, max_epochs=1, n_counterfactuals=20,
                                          random_state=0).fit(X, y)
    net = clf.net_
    state = FitState(seed=0, rng=np.random.RandomState(0), stream=torch.Generator())
    state.X, state.y = torch.as_tensor(X), torch.as_tensor(y)
    state.class_index = [np.flatnonzero(y == c) for c in (0, 1)]
    state.constraints = clf.constraints_.to_torch(torch.float32, torch.device("cpu"))
    module = net.module_
    module.train()
    module.norm.eval()  # frozen batch norm
    search_module._generate(net, state)
    assert module.training and not module.norm.training


def test_predict_restores_the_modules_modes():
    X, y = _blobs(100)
    clf = CounterfactualTrainedClassifier(_BatchNormNet, max_epochs=1, n_counterfactuals=20,
                                          random_state=0).fit(X, y)
    module = clf.logits_module_
    module.train()
    module.norm.eval()
    clf.predict_proba(X)
    assert module.training and not module.norm.training


# -- Ctrl-C ---------------------------------------------------------------------------------


class _InterruptAt(torch.nn.Module):
    """Linear model whose forward raises KeyboardInterrupt at one training-mode call (as a
    user's Ctrl-C would, outside any callback)."""

    def __init__(self, n_in=2, n_out=2, at=0):
        super().__init__()
        self.lin = torch.nn.Linear(n_in, n_out)
        self.at = at
        self.calls = 0

    def forward(self, X):
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                raise KeyboardInterrupt
        return self.lin(X)


def test_ctrl_c_during_fit_warns_with_the_epochs_completed():
    X, y = _blobs(100)
    # 100 rows, batch 50: per epoch two batches, each one training-mode forward (the CT rows
    # fold into the batch's pass), so call 5 is the third epoch's first batch
    clf = CounterfactualTrainedClassifier(_InterruptAt, module__at=5, max_epochs=5,
                                          batch_size=50, n_counterfactuals=20, random_state=0)
    with pytest.warns(UserWarning, match=r"interrupted \(KeyboardInterrupt\) after 2 of 5"):
        clf.fit(X, y)
    assert len(clf.history_) == 3
    assert clf.net_.fit_state_ is None


def test_early_stopping_is_not_reported_as_an_interruption():
    X, y = _blobs(100)
    clf = CounterfactualTrainedClassifier(
        lambda_div=0, lambda_adv=0, lambda_reg=0, lr=1e-12, max_epochs=6,
        callbacks=[EarlyStopping(monitor="train_loss", patience=1, sink=lambda *a: None)],
        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf.fit(X, y)
    assert len(clf.history_) < 6


# -- runaway energies -----------------------------------------------------------------------


def test_runaway_energies_warn_naming_lambda_reg():
    X, y = _blobs()
    clf = CounterfactualTrainedClassifier(lambda_div=5.0, lambda_reg=0.0, lr=0.05, max_epochs=8,
                                          batch_size=32, n_counterfactuals=300, max_iter_cf=10,
                                          random_state=0)
    with pytest.warns(RuntimeWarning, match="energies grew .* lambda_reg=0.0") as record:
        clf.fit(X, y)
    assert sum("energies grew" in str(w.message) for w in record) == 1  # once per fit


@pytest.mark.parametrize("params", [dict(lr=0.05), dict(lr=0.01),
                                    dict(lambda_div=5.0, lambda_reg=0.1, lr=0.05)])
def test_bounded_energies_do_not_warn(params):
    X, y = _blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        CounterfactualTrainedClassifier(max_epochs=8, batch_size=32, n_counterfactuals=300,
                                        max_iter_cf=10, random_state=0, **params).fit(X, y)


# -- non-finite losses ----------------------------------------------------------------------


def test_nonfinite_loss_with_huge_inputs_names_the_inputs():
    X, y = _blobs(100)
    with pytest.warns(RuntimeWarning, match=r"inputs reach \|x\| = [0-9.e+]+: standardise"):
        CounterfactualTrainedClassifier(max_epochs=2, n_counterfactuals=50,
                                        random_state=0).fit(X * 1e20, y)
