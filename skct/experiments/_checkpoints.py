"""Checkpoints of the evaluation: one JSON file per finished (experiment, model, generator) task.

A long evaluation writes each finished task to ``evaluation/parts-<fingerprint>/<task>.json``
so that an interrupted run resumes with the tasks left. The files are plain JSON tables
(:func:`~skct.experiments._files.frame_to_json`): reading one never executes code, and a file
whose format, fingerprint, task name or columns do not match is ignored and its task
recomputed. Checkpoints of other settings (other ``parts-*`` entries) are deleted without
following links.
"""

from __future__ import annotations

import json

from ._evaluation import CELL_COLUMNS, ROW_COLUMNS
from ._files import frame_from_json, frame_to_json

__all__ = []

#: Marks a checkpoint file written by this module.
PART_FORMAT = "skct-evaluation-part-1"


def parts_dir(fingerprint):
    """The checkpoint directory of an evaluation (relative to the results folder)."""
    return f"evaluation/parts-{fingerprint}"


def remove_stale_parts(folder, fingerprint):
    """Delete every ``evaluation/parts-*`` entry except this evaluation's directory (links are
    removed themselves, also one planted at this evaluation's name)."""
    keep = f"parts-{fingerprint}"
    for name in folder.list("evaluation", "parts-*"):
        rel = f"evaluation/{name}"
        if name != keep or folder.is_link(rel):
            folder.remove(rel)


def write_part(folder, fingerprint, key, result):
    """Store one task's ``(per_row, per_cell, seconds)``."""
    per_row, per_cell, seconds = result
    record = {"format": PART_FORMAT, "fingerprint": fingerprint, "key": key,
              "time_s": float(seconds), "per_row": frame_to_json(per_row),
              "per_cell": frame_to_json(per_cell)}
    folder.write_bytes(f"{parts_dir(fingerprint)}/{key}.json", json.dumps(record).encode())


def read_part(folder, fingerprint, key, log):
    """One task's ``(per_row, per_cell, seconds)`` from its checkpoint, or None (missing, or
    rejected with a log line saying why)."""
    rel = f"{parts_dir(fingerprint)}/{key}.json"
    record = folder.read_json(rel)
    if record is None:
        if folder.exists(rel):
            log(f"evaluate: checkpoint {key} is not a readable JSON file; recomputing it")
        return None
    try:
        if not isinstance(record, dict) or record.get("format") != PART_FORMAT:
            raise ValueError("not a checkpoint of this version")
        if record.get("fingerprint") != fingerprint or record.get("key") != key:
            raise ValueError("written for other settings")
        per_row = frame_from_json(record.get("per_row"), ROW_COLUMNS)
        per_cell = frame_from_json(record.get("per_cell"), CELL_COLUMNS)
        seconds = float(record.get("time_s"))
    except (TypeError, ValueError) as exc:
        log(f"evaluate: checkpoint {key} rejected ({exc}); recomputing it")
        return None
    return per_row, per_cell, seconds
