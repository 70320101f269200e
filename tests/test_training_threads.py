"""random_state gives bit-identical classifiers under threads and every joblib backend."""

from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from skct import CounterfactualTrainedClassifier
from skct.training import StreamDataLoader, stream_as_global


def _data(n=160, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


class _DropoutNet(torch.nn.Module):
    def __init__(self, n_in=3, n_out=2):
        super().__init__()
        self.hidden = torch.nn.Linear(n_in, 16)
        self.drop = torch.nn.Dropout(0.3)
        self.out = torch.nn.Linear(16, n_out)

    def forward(self, X):
        return self.out(self.drop(torch.relu(self.hidden(X))))


def _weights(clf):
    return torch.cat([p.detach().flatten() for p in clf.logits_module_.parameters()])


@pytest.mark.parametrize("module", [None, _DropoutNet], ids=["mlp", "dropout"])
def test_six_threaded_fits_match_the_serial_fit(module):
    X, y = _data()
    params = dict(module=module, max_epochs=3, n_counterfactuals=40, batch_size=32,
                  max_iter_cf=10, random_state=0)
    serial = _weights(CounterfactualTrainedClassifier(**params).fit(X, y))
    with ThreadPoolExecutor(6) as pool:
        threaded = list(pool.map(
            lambda _: _weights(CounterfactualTrainedClassifier(**params).fit(X, y)), range(6)))
    assert all(torch.equal(serial, w) for w in threaded)


def test_grid_search_with_threads_matches_n_jobs_1():
    X, y = _data(120)
    clf = CounterfactualTrainedClassifier(max_epochs=2, n_counterfactuals=30, batch_size=32,
                                          max_iter_cf=5, lr=0.01, random_state=0)
    grid = {"lambda_div": [0.0, 0.5], "lambda_reg": [0.1, 0.5]}
    serial = GridSearchCV(clf, grid, cv=2, n_jobs=1).fit(X, y)
    with joblib.parallel_backend("threading", n_jobs=2):
        threaded = GridSearchCV(clf, grid, cv=2).fit(X, y)
    for key in ("split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(serial.cv_results_[key], threaded.cv_results_[key])
    np.testing.assert_array_equal(serial.best_estimator_.predict_proba(X),
                                  threaded.best_estimator_.predict_proba(X))


def test_fit_leaves_torchs_global_generator_alone():
    X, y = _data(80)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    CounterfactualTrainedClassifier(module=_DropoutNet, max_epochs=2, n_counterfactuals=20,
                                    random_state=0).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


def test_fit_result_does_not_depend_on_the_global_generator():
    X, y = _data(80)
    params = dict(module=_DropoutNet, max_epochs=2, n_counterfactuals=20, random_state=0)
    torch.manual_seed(1)
    a = _weights(CounterfactualTrainedClassifier(**params).fit(X, y))
    torch.manual_seed(2)
    b = _weights(CounterfactualTrainedClassifier(**params).fit(X, y))
    assert torch.equal(a, b)


def test_stream_as_global_keeps_other_threads_out():
    streams = [torch.Generator().manual_seed(7) for _ in range(4)]

    def draw(stream):
        out = []
        for _ in range(50):
            with stream_as_global(stream):
                out.append(torch.rand(4))
        return torch.cat(out)

    expected = draw(torch.Generator().manual_seed(7))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(draw, streams))
    assert all(torch.equal(expected, r) for r in results)


def test_stream_data_loader_never_draws_from_the_global_generator():
    data = torch.utils.data.TensorDataset(torch.arange(10))
    state = torch.get_rng_state()
    for shuffle in (False, True):
        list(StreamDataLoader(data, batch_size=4, shuffle=shuffle))
    assert torch.equal(torch.get_rng_state(), state)


def test_cuda_generator_seeded_per_fit_with_a_warning_from_threads(monkeypatch):
    """On CUDA the device generator is seeded per fit; it is shared, which threads are told."""
    import contextlib

    from skct.training import cuda_seeded

    seeds = []
    monkeypatch.setattr(torch.cuda, "manual_seed", seeds.append)
    monkeypatch.setattr(torch.cuda, "device", lambda index: contextlib.nullcontext())
    monkeypatch.setattr(torch.random, "fork_rng", lambda devices: contextlib.nullcontext())
    with cuda_seeded("cuda:0", 11):
        pass
    assert seeds == [11]

    def in_thread():
        with pytest.warns(UserWarning, match="not bit-identical"):
            with cuda_seeded("cuda:0", 12):
                pass

    with ThreadPoolExecutor(1) as pool:
        pool.submit(in_thread).result()
    assert seeds == [11, 12]


# ---------------------------------------------------------------------------------------------
# whole batches by one indexing: torch's batches, values and dtypes
# ---------------------------------------------------------------------------------------------
def _loaders(ds, **kw):
    """(ours, torch's DataLoader seeded alike), each iterated over two epochs."""
    from torch.utils.data import DataLoader

    ours = StreamDataLoader(ds, generator=torch.Generator().manual_seed(7), **kw)
    got = list(ours) + list(ours)
    torch.manual_seed(7)
    theirs = DataLoader(ds, **kw)
    return got, list(theirs) + list(theirs)


@pytest.mark.parametrize("labels", ["int", "float", None])
@pytest.mark.parametrize("kw", [dict(batch_size=16, shuffle=True), dict(batch_size=16),
                                dict(batch_size=16, shuffle=True, drop_last=True),
                                dict(batch_size=200)])
def test_whole_batches_are_torch_batches(labels, kw):
    from skorch.dataset import Dataset

    import skct.training._rng as rng

    X = np.random.RandomState(0).randn(101, 4).astype(np.float32)
    y = {"int": np.arange(101) % 3, "float": np.linspace(0, 1, 101), None: None}[labels]
    ds = Dataset(X, y)
    assert rng._whole_batch_arrays(StreamDataLoader(ds, batch_size=4)) is not None
    got, want = _loaders(ds, **kw)
    assert len(got) == len(want)
    for (xa, ya), (xb, yb) in zip(got, want):
        assert xa.dtype == xb.dtype and ya.dtype == yb.dtype and ya.shape == yb.shape
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert X.flags.writeable and np.array_equal(X, np.random.RandomState(0).randn(101, 4)
                                                .astype(np.float32))  # input untouched


def test_other_datasets_keep_torch_loading():
    import pandas as pd
    from skorch.dataset import Dataset
    from torch.utils.data import TensorDataset

    import skct.training._rng as rng

    X = np.random.RandomState(1).randn(20, 3).astype(np.float32)
    y = np.arange(20)

    class Doubled(Dataset):
        def transform(self, X, y):
            return X * 2, y

    for ds in (Doubled(X, y), TensorDataset(torch.from_numpy(X)),
               Dataset(pd.DataFrame(X, columns=list("abc")), y), Dataset({"a": X}, y)):
        assert rng._whole_batch_arrays(StreamDataLoader(ds, batch_size=4)) is None
    own_collate = StreamDataLoader(Dataset(X, y), batch_size=4, collate_fn=lambda b: b)
    assert rng._whole_batch_arrays(own_collate) is None
    got, want = _loaders(Doubled(X, y), batch_size=8, shuffle=True)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(got, want))
    first = next(iter(StreamDataLoader(Doubled(X, y), batch_size=8)))
    assert torch.equal(first[0], torch.from_numpy(2 * X[:8]))  # the dataset's own transform


def test_whole_batches_of_a_read_only_array():
    import warnings

    from skorch.dataset import Dataset

    X = np.random.RandomState(2).randn(30, 3).astype(np.float32)
    X.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no copy of X, and no warning about it
        got = torch.cat([b[0] for b in StreamDataLoader(Dataset(X, np.arange(30)),
                                                        batch_size=7)])
    assert torch.equal(got, torch.from_numpy(X.copy()))
