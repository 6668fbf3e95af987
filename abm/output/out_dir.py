"""The output folder of a run (``--out``): checked before the run, never clobbered.

:func:`prepare_out_dir` refuses, with one line naming the folder, an ``--out`` that is a
file, lies under a file, cannot be written, or already holds results of an earlier run
(files this project writes: :func:`is_run_file`). With ``overwrite`` the earlier run's
files are removed first; a folder that also holds files this project does not write is
refused instead (nothing unknown is ever deleted).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from pathlib import Path

from abm.errors import AbmError
from analysis.tables import DEPLOY_TABLES, OPTIMUM_TABLES, TABLES

#: Files a run writes at the top of its folder (besides its tables, ``<name>.csv``).
RUN_FILES = frozenset(
    {
        "config.json",
        "summary.json",
        "status.json",
        "comparison.csv",
        "comparison.md",
        "comparison.png",
        "daily_profiles.png",
        "report.html",
        "checkpoint.pt",
        "metrics.csv",
    }
)
#: Result tables (``<name>.csv``) of ``simulate``, ``deploy``, ``optimum`` and ``study``.
RUN_TABLES = frozenset({*TABLES, *DEPLOY_TABLES, *OPTIMUM_TABLES})
#: Folders a run writes and the file names (patterns) each holds: a deployment's
#: per-process records and its run spec, snapshot and logs; a training run's actor files
#: and TensorBoard event files; a report's tables and figures.
RUN_FOLDERS = {
    "agents": ("*.jsonl",),
    "deploy": ("*.json", "*.sh", "*.log", "*.tmp"),
    "actors": ("*.npz", "*.tmp"),
    "tensorboard": ("events.out.tfevents.*",),
    "tables": ("*.csv",),
    "figures": ("*.png",),
}
#: Suffix of a file being written (temporary file renamed when complete).
TMP_SUFFIX = ".tmp"
#: Names listed in an error line before "and N more".
SHOWN_NAMES = 5


class OutputDirError(AbmError):
    """``--out`` cannot take this run's results; the message names the folder and why."""


def is_run_file(name: str) -> bool:
    """Whether a top-level file ``name`` is one this project writes into a run folder."""
    name = name.removesuffix(TMP_SUFFIX)
    if name in RUN_FILES:
        return True
    stem, _, ext = name.rpartition(".")
    return ext == "csv" and stem in RUN_TABLES


def _run_folder_unknowns(folder: Path, patterns: tuple[str, ...]) -> list[Path]:
    """Files under a run's folder (:data:`RUN_FOLDERS`) this project does not write."""
    return [
        p
        for p in folder.rglob("*")
        if not p.is_dir() and not any(fnmatch.fnmatchcase(p.name, pat) for pat in patterns)
    ]


def survey(out_dir: Path, study_modes: tuple[str, ...] = ()) -> tuple[list[Path], list[Path]]:
    """``(run files, unknown files)`` in ``out_dir`` (``study_modes``: run subfolders)."""
    ours: list[Path] = []
    unknown: list[Path] = []
    for entry in sorted(out_dir.iterdir()):
        if entry.is_dir() and entry.name in RUN_FOLDERS:
            strangers = _run_folder_unknowns(entry, RUN_FOLDERS[entry.name])
            (unknown if strangers else ours).append(entry)
            unknown += strangers
        elif entry.is_dir() and entry.name in study_modes:
            sub_unknown = survey(entry)[1]
            (unknown if sub_unknown else ours).append(entry)
            unknown += sub_unknown
        elif entry.is_file() and is_run_file(entry.name):
            ours.append(entry)
        else:
            unknown.append(entry)
    return ours, unknown


def _names(paths: list[Path], root: Path) -> str:
    names = [str(p.relative_to(root)) for p in paths[:SHOWN_NAMES]]
    more = len(paths) - SHOWN_NAMES
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _make_writable_folder(out_dir: Path) -> None:
    """Create ``out_dir`` if needed and prove it writable; refuse a file or a path under one."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputDirError(f"--out {out_dir}: is a file, not a folder")
    existing = out_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputDirError(f"--out {out_dir}: {existing} is a file, not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".p2pvar-probe-", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputDirError(f"--out {out_dir}: cannot write there ({exc.strerror})") from None


def prepare_out_dir(out_dir: Path, overwrite: bool, study_modes: tuple[str, ...] = ()) -> Path:
    """Check ``out_dir`` before a run and clear an earlier run's files when ``overwrite``.

    Returns the folder (created). ``study_modes`` names subfolders that hold one run each
    (``study markets``). Raises :class:`OutputDirError` with one line otherwise.
    """
    out_dir = Path(out_dir)
    _make_writable_folder(out_dir)
    ours, unknown = survey(out_dir, study_modes)
    if not ours:
        return out_dir
    if not overwrite:
        raise OutputDirError(
            f"--out {out_dir}: holds an earlier run's results ({_names(ours, out_dir)}); "
            "pass --overwrite to replace them, or choose another folder"
        )
    if unknown:
        raise OutputDirError(
            f"--out {out_dir}: --overwrite would leave files p2pvar did not write "
            f"({_names(unknown, out_dir)}); move them away or choose another folder"
        )
    for path in ours:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return out_dir
