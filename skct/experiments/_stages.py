"""One resumable stage: fingerprint its inputs, reuse its verified record, or compute and write.

A stage (training one model, the evaluation, robustness, the reductions, the plots) is named,
writes one *record* (a JSON file) and any number of artefact files. The record holds the
fingerprint of everything the stage depends on, the stage's JSON-able value, its time and the
SHA-256 of every artefact. On the next run the stage is skipped only when the record's
fingerprint matches and every artefact is a regular file with the recorded digest: the bytes
handed back for reuse are the verified ones. Anything else (no record, other settings, a
missing, changed or linked file) recomputes the stage, and so does a verified record whose
``restore`` function finds its files unusable (it raises :class:`Unusable`, e.g. a record of
an older file format).

Cache busting is :data:`FORMAT`, one number for every stage: raise it when what a stage
computes or writes changes without a change of its inputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ._files import fingerprint, sha256

__all__ = []

#: Version of the stages' computations and files; part of every fingerprint.
FORMAT = 1


class Unusable(Exception):
    """Raised by a stage's ``restore`` function: the verified files cannot be reused (the
    message says why); :func:`run_stage` recomputes the stage."""


@dataclass(frozen=True)
class Stage:
    """A stage: its ``name``, the path of its ``record`` in the results folder and the
    ``inputs`` (JSON-able) its result depends on."""

    name: str
    record: str
    inputs: dict

    @property
    def fingerprint(self):
        return fingerprint({"stage": self.name, "format": FORMAT, "inputs": self.inputs})


@dataclass
class Computed:
    """What a stage's compute function returns: the JSON-able ``value``, artefact ``files``
    (path in the folder -> bytes), the in-memory object ``obj`` and, optionally, the time to
    record (default: the time the compute function took)."""

    value: Any
    files: dict = field(default_factory=dict)
    obj: Any = None
    time_s: float | None = None


@dataclass
class StageResult:
    """A stage's outcome: ``value``, verified ``files``, ``obj`` (computed or restored),
    ``fingerprint``, ``time_s`` (of the run that computed it), ``skipped`` and ``rejected``
    (why a found record was not reused, when ``restore`` raised :class:`Unusable`)."""

    value: Any
    files: dict
    obj: Any
    fingerprint: str
    time_s: float
    skipped: bool
    rejected: str | None = None


def verified_record(folder, stage):
    """``(record, files)`` when the stage's record matches its fingerprint and every artefact
    has its recorded digest; None otherwise."""
    record = folder.read_json(stage.record)
    if (not isinstance(record, dict) or record.get("fingerprint") != stage.fingerprint
            or not isinstance(record.get("files"), dict) or "value" not in record):
        return None
    files = {}
    for rel, digest in record["files"].items():
        data = folder.read_bytes(rel)
        if data is None or sha256(data) != digest:
            return None
        files[rel] = data
    return record, files


def run_stage(folder, stage, compute, *, force=False, restore=None, log=None):
    """Skip ``stage`` when its verified record exists (unless ``force``), else compute it.

    Parameters
    ----------
    folder : ResultsFolder
    stage : Stage
    compute : callable
        ``compute() -> Computed``; its files are written, then the record.
    force : bool, default=False
        Recompute even when a valid record exists.
    restore : callable or None
        ``restore(value, files) -> obj`` rebuilds the in-memory object of a skipped stage; it
        raises :class:`Unusable` when the files cannot be reused (the stage is recomputed).
    log : callable or None
        ``log(line)`` is told why a found record is not reused before the stage is recomputed.

    Returns
    -------
    StageResult
    """
    fp = stage.fingerprint
    found = None if force else verified_record(folder, stage)
    rejected = None
    if found is not None:
        record, files = found
        try:
            obj = restore(record["value"], files) if restore is not None else None
        except Unusable as exc:
            rejected = str(exc) or "its files cannot be reused"
            if log is not None:
                log(f"{stage.name}: found {stage.record} but {rejected}; recomputing")
        else:
            return StageResult(record["value"], files, obj, fp,
                               float(record.get("time_s") or 0.0), True)
    start = time.perf_counter()
    out = compute()
    elapsed = time.perf_counter() - start if out.time_s is None else float(out.time_s)
    for rel, data in out.files.items():
        folder.write_bytes(rel, data)
    folder.write_json(stage.record, {
        "stage": stage.name, "fingerprint": fp, "time_s": elapsed,
        "files": {rel: sha256(data) for rel, data in out.files.items()},
        "value": out.value})
    return StageResult(out.value, dict(out.files), out.obj, fp, elapsed, False, rejected)
