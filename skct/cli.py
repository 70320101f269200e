"""Command line of skct: ``skct experiment``, ``skct report`` and ``skct datasets``.

Examples
--------
Run one data set, resumably, and write the results page::

    skct experiment --dataset moons --out results/
    skct experiment --all --out results/ --n-jobs 2
    skct report --results results/                    # writes results/results.md
    skct report --results results/ --out docs/results.md
    skct datasets

``python -m skct ...`` does the same. Exit codes: 0 success, 1 a run failed (e.g. a data file
is missing), 2 bad arguments (including an unknown data set), 130 interrupted (Ctrl-C; the
stages an experiment finished are kept and the same command resumes it).

The help and ``skct datasets`` load neither torch, scikit-learn nor the experiment runner: the
runner is imported only by the ``experiment`` and ``report`` commands.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

__all__ = ["main"]


def _number(cast, accept, expected):
    """An argparse type: ``cast`` the text, then require ``accept(value)`` (else ``expected``)."""
    kind = "an integer" if cast is int else "a number"

    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
_non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_probability = _number(float, lambda v: 0 < v < 1, "a number in (0, 1)")
_positive_float = _number(float, lambda v: v > 0, "a number > 0")
_non_negative_float = _number(float, lambda v: v >= 0, "a number >= 0")
_n_jobs = _number(int, lambda v: v != 0, "a non-zero number of jobs (-1 for all cores)")


def _tau(text):
    if text == "paper":
        return text
    return _probability(text)


def _parser():
    from .experiments import DATASET_NAMES

    parser = argparse.ArgumentParser(
        prog="skct",
        description="Counterfactual training (skct): reproduce the paper's experiments.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    exp = sub.add_parser(
        "experiment", help="train baseline and CT models, evaluate, reduce, save",
        description="Train the conventional baseline and the two counterfactually trained "
                    "models of the reference protocol (single: no mutability constraints; "
                    "mutability: immutable features protected) with the paper's settings on "
                    "each data set, evaluate them with the same generators and budget, compute "
                    "the per-run reductions and write OUT/<dataset>/results.json, metrics.csv "
                    "and plots. Resumable: finished stages are skipped.")
    which = exp.add_mutually_exclusive_group(required=True)
    which.add_argument("--dataset", "-d", action="append", metavar="NAME",
                       help=f"data set (repeatable); one of: {', '.join(DATASET_NAMES)}")
    which.add_argument("--all", action="store_true", help="every data set of the paper")
    exp.add_argument("--out", "-o", required=True, metavar="DIR",
                     help="results directory (one sub-directory per data set)")
    exp.add_argument("--data-home", metavar="DIR",
                     help="directory of the real data files (default: $SKCT_DATA_HOME or "
                          "../shared/data)")
    exp.add_argument("--max-epochs", type=_positive_int, metavar="N",
                     help="training epochs (default: the paper's 100)")
    exp.add_argument("--n-runs", type=_positive_int, metavar="N",
                     help="runs per factual -> target pair and generator (default 30)")
    exp.add_argument("--n-factuals", type=_positive_int, metavar="N",
                     help="factuals per run (default 100)")
    exp.add_argument("--max-pairs", type=_positive_int, metavar="N",
                     help="evaluate at most N factual -> target pairs (MNIST has 90)")
    exp.add_argument("--lambda-energy", type=_non_negative_float, action="append",
                     metavar="X", help="test-time ECCo energy penalty (repeatable; default "
                                       "0.1 0.5 1 5 10)")
    exp.add_argument("--tau", type=_tau, metavar="P",
                     help="test-time decision threshold for both experiments, overriding the "
                          "reference's per-column values ('paper', the default: 0.95 for IP "
                          "and IP* (single), 0.5 for cost (mutability))")
    exp.add_argument("--step-size", type=_positive_float, metavar="X",
                     help="test-time search step (default 0.1, the reference code's "
                          "effective step)")
    exp.add_argument("--protocol", choices=("reference", "skct"), default="reference",
                     help="how the experiment runs: 'reference' (default) follows the paper's "
                          "own code in every protocol item (domain, training step, one-hot "
                          "columns, data, initialisation and batch order), 'skct' takes "
                          "skct's own choices")
    exp.add_argument("--data-seed", type=int, default=None, metavar="SEED",
                     help="seed of the data (default: --random-state); training seeds of "
                          "one data set share it")
    exp.add_argument("--n-bootstrap", type=_non_negative_int, metavar="N",
                     help="resamples of the counterfactual-level bootstrap shown next to the "
                          "reference's per-run uncertainty (default 1000; 0 skips it)")
    exp.add_argument("--n-jobs", type=_n_jobs, default=1, metavar="N",
                     help="parallel workers for the evaluation (default 1; -1 all cores)")
    exp.add_argument("--random-state", type=int, default=0, metavar="SEED",
                     help="seed (default 0)")
    exp.add_argument("--no-plots", action="store_true", help="do not draw plots")
    exp.add_argument("--force", action="store_true",
                     help="recompute every stage, even when its results exist")
    exp.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    exp.add_argument("--report", metavar="PATH",
                     help="also write the results page (markdown) from OUT to PATH")

    parser.experiment_parser = exp
    rep = sub.add_parser("report", help="write the results page from saved results",
                         description="Build the markdown results page (our reductions with "
                                     "confidence intervals next to the paper's) from "
                                     "RESULTS/<dataset>/results.json.")
    rep.add_argument("--results", "-r", required=True, metavar="DIR",
                     help="results directory of `skct experiment`")
    rep.add_argument("--out", "-o", default=None, metavar="PATH",
                     help="markdown file to write (default: RESULTS/results.md, inside the "
                          "results directory)")

    sub.add_parser("datasets", help="list the data sets and their paper settings",
                   description="List the data sets of the paper with their training settings.")
    return parser


def _cmd_datasets(args):
    from .experiments import DATASET_NAMES, PAPER_LABELS, SYNTHETIC_DATASETS, paper_settings

    print(f"{'name':<20}{'paper':<7}{'batch':>6}{'tau':>6}{'n_cf':>6}{'lambda_reg':>11}"
          f"{'mutability: adv/reg':>21}  source")
    for name in DATASET_NAMES:
        s = paper_settings(name)
        m = paper_settings(name, "mutability")
        source = "generated" if name in SYNTHETIC_DATASETS else "data file"
        mut = f"{m['lambda_adv']:g} / {m['lambda_reg']:g}"
        print(f"{name:<20}{PAPER_LABELS[name]:<7}{s['batch_size']:>6}"
              f"{s['decision_threshold']:>6}{s['n_counterfactuals']:>6}{s['lambda_reg']:>11}"
              f"{mut:>21}  {source}")
    return 0


def _cmd_experiment(args, parser):
    from .experiments import DATASET_NAMES, run_experiment, write_results_markdown

    datasets = list(DATASET_NAMES) if args.all else list(dict.fromkeys(args.dataset))
    unknown = [d for d in datasets if d not in DATASET_NAMES]
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(map(repr, unknown))}; choose from: "
                     f"{', '.join(DATASET_NAMES)}")
    evaluation = {}
    if args.tau is not None:
        evaluation["decision_threshold"] = args.tau
    if args.step_size is not None:
        evaluation["step_size"] = args.step_size
    if args.n_bootstrap is not None:
        evaluation["n_bootstrap"] = args.n_bootstrap
    verbose = 0 if args.quiet else 1
    start = time.perf_counter()
    failed = []
    for i, name in enumerate(datasets, 1):
        if verbose:
            print(f"=== {name} ({i}/{len(datasets)}) ===", flush=True)
        try:
            run_experiment(name, out_dir=args.out, data_home=args.data_home,
                           max_epochs=args.max_epochs, n_runs=args.n_runs,
                           n_factuals=args.n_factuals, max_pairs=args.max_pairs,
                           lambda_energies=args.lambda_energy, n_jobs=args.n_jobs,
                           random_state=args.random_state, data_seed=args.data_seed,
                           protocol=args.protocol, force=args.force,
                           plots=not args.no_plots, verbose=verbose,
                           evaluation=evaluation or None)
        except KeyboardInterrupt as exc:  # main() prints one line and returns 130
            raise KeyboardInterrupt(f"{name}: {exc}" if str(exc) else name) from None
        except (FileNotFoundError, ValueError) as exc:
            print(f"skct experiment: error: {name}: {exc}", file=sys.stderr)
            failed.append(name)
        except Exception as exc:  # keep going with the other data sets
            if verbose:
                traceback.print_exc()
            print(f"skct experiment: error: {name} failed: {exc!r}", file=sys.stderr)
            failed.append(name)
    if verbose:
        print(f"=== finished {len(datasets) - len(failed)}/{len(datasets)} data set(s) in "
              f"{time.perf_counter() - start:.1f}s; results in {args.out} ===", flush=True)
    if args.report:
        try:
            write_results_markdown(args.out, args.report)
            if verbose:
                print(f"wrote {args.report}")
        except FileNotFoundError as exc:
            print(f"skct experiment: error: {exc}", file=sys.stderr)
            return 1
    return 1 if failed else 0


def _cmd_report(args):
    from pathlib import Path

    from .experiments import write_results_markdown

    try:
        write_results_markdown(args.results, args.out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"skct report: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out or Path(args.results) / 'results.md'}")
    return 0


def main(argv=None):
    """Run the ``skct`` command line; returns the exit code.

    Parameters
    ----------
    argv : list of str or None, default=None
        Arguments without the program name (None: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 when a run failed, 2 for bad arguments, 130 when interrupted
        (Ctrl-C): a one-line message on stderr, no traceback.

    Examples
    --------
    >>> from skct.cli import main
    >>> main(["datasets"])  # doctest: +ELLIPSIS
    name                paper   batch   tau  n_cf lambda_reg  mutability: adv/reg  source
    linearly_separable  LS         30   0.5  1000       0.01                0 / 0  generated
    ...
    0
    """
    parser = _parser()
    args = None
    try:
        args = parser.parse_args(argv)
        if args.command == "datasets":
            return _cmd_datasets(args)
        if args.command == "report":
            return _cmd_report(args)
        return _cmd_experiment(args, parser.experiment_parser)
    except SystemExit as exc:  # argparse errors (2) and --help (0)
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    except KeyboardInterrupt as exc:
        _say_interrupted(getattr(args, "command", None), str(exc))
        return 130


def _say_interrupted(command, detail):
    """The one line printed on Ctrl-C (exit code 130)."""
    where = f" ({detail})" if detail else ""
    if command == "experiment":
        text = (f"skct experiment: interrupted{where}; finished stages are kept; run the same "
                "command again to resume")
    else:
        text = f"skct{' ' + command if command else ''}: interrupted{where}"
    try:
        print(text, file=sys.stderr, flush=True)
    except (KeyboardInterrupt, OSError):  # a second Ctrl-C, or stderr closed
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
