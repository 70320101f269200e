"""Checkpoints of the evaluation: one JSON file per finished (experiment, model, generator) task.

The evaluation writes each finished task to ``evaluation/tasks/<task>.json`` with the
fingerprint of that task's own inputs (the model's training, the test-time settings), so that
an interrupted run resumes with the tasks left and a run that changes one model recomputes only
that model's tasks (a results folder may be seeded with another folder's models and tasks).
The files are plain JSON tables (:func:`~skct.experiments._files.frame_to_json`): reading one
never executes code, and a file whose format, fingerprint, task name or columns do not match is
ignored and its task recomputed. Checkpoints of earlier versions (``parts-*`` entries) are
deleted without following links.
"""

from __future__ import annotations

import json

from ._evaluation import CELL_COLUMNS, ROW_COLUMNS
from ._files import frame_from_json, frame_to_json

__all__ = []

#: Marks a checkpoint file written by this module.
PART_FORMAT = "skct-evaluation-part-1"


#: The checkpoint directory (relative to the results folder).
TASKS_DIR = "evaluation/tasks"


def remove_stale_parts(folder, keys=None):
    """Delete the checkpoints of earlier versions (every ``evaluation/parts-*`` entry), a link
    planted at :data:`TASKS_DIR`, and, when ``keys`` is given, the task files of other tasks."""
    for name in folder.list("evaluation", "parts-*"):
        folder.remove(f"evaluation/{name}")
    if folder.is_link(TASKS_DIR):
        folder.remove(TASKS_DIR)
    if keys is not None and folder.exists(TASKS_DIR):
        wanted = {f"{k}.json" for k in keys}
        for name in folder.list(TASKS_DIR, "*"):
            if name not in wanted or folder.is_link(f"{TASKS_DIR}/{name}"):
                folder.remove(f"{TASKS_DIR}/{name}")


def write_part(folder, fingerprint, key, result):
    """Store one task's ``(per_row, per_cell, seconds)`` under the task's own fingerprint."""
    per_row, per_cell, seconds = result
    record = {"format": PART_FORMAT, "fingerprint": fingerprint, "key": key,
              "time_s": float(seconds), "per_row": frame_to_json(per_row),
              "per_cell": frame_to_json(per_cell)}
    folder.write_bytes(f"{TASKS_DIR}/{key}.json", json.dumps(record).encode())


def read_part(folder, fingerprint, key, log):
    """One task's ``(per_row, per_cell, seconds)`` from its checkpoint, or None (missing, or
    rejected with a log line saying why)."""
    rel = f"{TASKS_DIR}/{key}.json"
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
