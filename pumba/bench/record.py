"""The run record: one JSON object per (method, dataset, subject) run, written by the runner.

Fields (:data:`RECORD_FIELDS`):
    method: the method's name (a key of the config's ``methods``); tool: its registry key;
    version: the tool's distribution and version ("deepbet 1.0.2"); settings: every setting's value;
    geometry: the grid the tool worked on (what the tool reported, e.g. ``pumba strip``'s mode, else the
    registry's one line); dataset, subject; image: the input; mask: the mask written (null after a
    failure); status: "ok" | "failed"; error: one line or null; seconds: wall seconds of the child;
    peak_rss_mb: its peak resident memory (MB = 2^20 bytes; null after a timeout); returncode
    (negative: killed by that signal). seconds, peak_rss_mb and returncode are null when no process
    could be started. qc: the mask's quality score without a reference, ``{"score": 0..1, "flag": bool}``
    (:mod:`pumba.infer.qc`), when the tool reported one (``pumba strip`` does), else null.
"""

from __future__ import annotations

RECORD_FIELDS = (
    "method",
    "tool",
    "version",
    "settings",
    "geometry",
    "dataset",
    "subject",
    "image",
    "mask",
    "status",
    "error",
    "seconds",
    "peak_rss_mb",
    "returncode",
    "qc",
)
# The fields the evaluation needs (older records lack tool, version, settings and geometry).
SCORED_FIELDS = ("method", "dataset", "subject", "image", "mask", "status", "error", "seconds")
# A child may write a JSON object here (the environment variable names the file): what it actually did,
# e.g. {"mode": "resize", "qc": {"score": 0.93, "flag": false}}; the runner stores its "qc" as the record's
# qc and the rest as its geometry.
RUN_INFO_VARIABLE = "PUMBA_RUN_INFO"
