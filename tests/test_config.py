"""The configuration: thread-local, validated, carried into joblib workers."""

import threading

import joblib
import pytest
import torch

import skct
from skct._config import torch_threads
from skct._utils.parallel import Parallel, delayed


def test_default_and_set_config_round_trip():
    old = skct.get_config()
    try:
        skct.set_config(torch_threads=3)
        assert skct.get_config()["torch_threads"] == 3
    finally:
        skct.set_config(**old)
    assert skct.get_config() == old


def test_get_config_returns_a_copy():
    config = skct.get_config()
    config["torch_threads"] = 99
    assert skct.get_config()["torch_threads"] != 99


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_set_config_rejects_bad_thread_counts(bad):
    with pytest.raises(ValueError, match="torch_threads"):
        skct.set_config(torch_threads=bad)


def test_config_context_restores_on_exception():
    before = skct.get_config()
    with pytest.raises(RuntimeError):
        with skct.config_context(torch_threads=5):
            assert skct.get_config()["torch_threads"] == 5
            raise RuntimeError
    assert skct.get_config() == before


def test_config_is_thread_local():
    seen = {}

    def other():
        seen["other"] = skct.get_config()["torch_threads"]

    with skct.config_context(torch_threads=4):
        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert skct.get_config()["torch_threads"] == 4
    # a new thread starts from the process defaults, not from another thread's context
    assert seen["other"] == skct._config._DEFAULTS["torch_threads"]


@pytest.mark.parametrize("backend", ["threading", "loky", "sequential"])
def test_parallel_carries_the_callers_config_to_workers(backend):
    with skct.config_context(torch_threads=2):
        out = Parallel(n_jobs=2, backend=backend)(
            delayed(skct.get_config)() for _ in range(4))
    assert [c["torch_threads"] for c in out] == [2, 2, 2, 2]


def test_plain_joblib_does_not_carry_it():
    # the reason skct uses its own Parallel: joblib's threads start from the defaults
    with skct.config_context(torch_threads=2):
        out = joblib.Parallel(n_jobs=2, backend="threading")(
            joblib.delayed(skct.get_config)() for _ in range(2))
    assert all(c["torch_threads"] == skct._config._DEFAULTS["torch_threads"] for c in out)


def test_torch_threads_sets_and_restores():
    old = torch.get_num_threads()
    with skct.config_context(torch_threads=1):
        with torch_threads():
            assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == old


def test_torch_threads_zero_leaves_torch_alone():
    old = torch.get_num_threads()
    with skct.config_context(torch_threads=0):
        with torch_threads():
            assert torch.get_num_threads() == old


def test_env_variable_is_validated(monkeypatch):
    monkeypatch.setenv("SKCT_TORCH_THREADS", "two")
    with pytest.raises(ValueError, match="SKCT_TORCH_THREADS"):
        skct._config._env_threads()
    monkeypatch.setenv("SKCT_TORCH_THREADS", "-2")
    with pytest.raises(ValueError, match="SKCT_TORCH_THREADS"):
        skct._config._env_threads()
    monkeypatch.setenv("SKCT_TORCH_THREADS", "3")
    assert skct._config._env_threads() == 3


def test_fast_search_flag(monkeypatch):
    assert skct.get_config()["fast_search"] is True  # on by default
    with skct.config_context(fast_search=False):
        assert skct.get_config()["fast_search"] is False
    assert skct.get_config()["fast_search"] is True
    for value, expected in [("0", False), ("false", False), ("1", True), ("", True)]:
        monkeypatch.setenv("SKCT_FAST_SEARCH", value)
        assert skct._config._env_flag("SKCT_FAST_SEARCH", default=True) is expected
    monkeypatch.setenv("SKCT_FAST_SEARCH", "maybe")
    with pytest.raises(ValueError, match="SKCT_FAST_SEARCH"):
        skct._config._env_flag("SKCT_FAST_SEARCH", default=True)
    with pytest.raises(ValueError, match="fast_search"):
        skct.set_config(fast_search=1)
