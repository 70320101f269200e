"""The ``skct`` command line: a light start (no torch for the help), Ctrl-C ends cleanly."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from skct.cli import main

REPO = Path(__file__).resolve().parents[1]
DATASET = "linearly_separable"
SMALL_ARGS = ["--max-epochs", "3", "--n-runs", "2", "--n-factuals", "4", "--lambda-energy",
              "5", "--n-bootstrap", "20", "--no-plots", "--quiet"]
RESUME_HINT = "finished stages are kept; run the same command again to resume"
HEAVY = ("torch", "sklearn", "skorch", "pandas", "matplotlib", "skct.experiments._runner")


def _python(code):
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_help_and_datasets_do_not_import_the_runner():
    # regression: the parser imported skct.experiments, which imported torch and the runner
    check = f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = _python(f"import skct.cli, sys; skct.cli._parser(); {check}")
    assert out.strip() == "[]"
    out = _python(f"import skct.cli, sys; code = skct.cli.main(['datasets']); {check}; "
                  "print(code)")
    assert "credit_default" in out and out.strip().endswith("[]\n0")
    for args in (["--help"], ["experiment", "--help"], ["report", "--help"]):
        proc = subprocess.run([sys.executable, "-m", "skct", *args], capture_output=True,
                              text=True, cwd=REPO, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "usage: skct" in proc.stdout


def test_package_names_match_the_modules():
    import skct.experiments as experiments
    from skct.experiments import (
        _data,
        _names,
        _report,
        _reproduction,
        _runner,
        _seeds,
        _settings,
        _statistics,
    )

    names = set(_settings.__all__ + _data.__all__ + _statistics.__all__ + _runner.__all__
                + _report.__all__ + _names.__all__ + _seeds.__all__ + _reproduction.__all__)
    assert experiments.__all__ == sorted(names)
    for name in names:
        assert getattr(experiments, name) is not None
    assert set(names) <= set(dir(experiments))
    with pytest.raises(AttributeError, match="no_such_name"):
        experiments.no_such_name


def _interrupted(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "KeyError" not in err
    return lines[0]


def test_ctrl_c_in_a_stage_exits_130(tmp_path, capsys, monkeypatch):
    from skct.experiments import _runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_runner, "fit_model", interrupted)
    code = main(["experiment", "--dataset", DATASET, "--dataset", "moons",
                 "--out", str(tmp_path)] + SMALL_ARGS)
    assert code == 130
    line = _interrupted(capsys.readouterr().err)
    assert line.startswith(f"skct experiment: interrupted ({DATASET})") and RESUME_HINT in line
    assert not (tmp_path / "moons").exists()  # the other data sets do not start


class _CtrlC:
    """``torch.optim.Adam.step`` that raises KeyboardInterrupt at its ``n``-th call (Ctrl-C
    during a training batch)."""

    def __init__(self, n):
        self.n, self.calls = n, 0
        self.step = torch.optim.Adam.step

    def __call__(self, opt, *args, **kwargs):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.step(opt, *args, **kwargs)


@pytest.mark.parametrize("n_batch, done", [(1, 0), (150, 1)])  # 120 batches per epoch
def test_ctrl_c_during_training_exits_130_and_resumes(n_batch, done, tmp_path, capsys,
                                                      monkeypatch):
    # regression: the classifier returned after Ctrl-C and the runner failed with
    # KeyError: 'train_loss' (exit code 1), or stored the unfinished model
    monkeypatch.setattr(torch.optim.Adam, "step", _CtrlC(n_batch))
    args = ["experiment", "--dataset", DATASET, "--out", str(tmp_path)] + SMALL_ARGS
    assert main(args) == 130
    line = _interrupted(capsys.readouterr().err)
    assert f"({DATASET}: training baseline after {done} of 3 epochs)" in line
    assert RESUME_HINT in line
    models = tmp_path / DATASET / "models"
    assert not (models / "baseline.json").exists() and not (models / "baseline.skct").exists()
    monkeypatch.undo()
    assert main(args) == 0  # the same command finishes the run
    saved = json.loads((tmp_path / DATASET / "results.json").read_text())
    assert saved["models"]["baseline"]["training"]["history"]["epochs"] == 3


def test_ctrl_c_in_report_exits_130(tmp_path, capsys, monkeypatch):
    import skct.experiments

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(skct.experiments, "write_results_markdown", interrupted)
    assert main(["report", "--results", str(tmp_path)]) == 130
    assert _interrupted(capsys.readouterr().err) == "skct report: interrupted"
