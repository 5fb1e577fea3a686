"""The scheduled backup: one directory per run under OPS_BACKUP_DIR, then rotation (keep N daily, M weekly).

A run writes into `.partial-<stamp>` and renames it to `backup-<stamp>` only when the backup is complete, so a
crashed run never counts as a kept backup (its leftover is removed by the next run). Rotation follows restic's
`--keep-daily/--keep-weekly`: the newest backup of each of the N most recent days that have one, and the newest
of each of the M most recent ISO weeks that have one; a backup may be kept for both reasons.
"""

import shutil
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from operations.backup import backup_run

PREFIX = "backup-"
PARTIAL_PREFIX = ".partial-"
STAMP = "%Y%m%dT%H%M%SZ"


def rotation_keep(stamps: list[datetime], *, daily: int, weekly: int) -> set[datetime]:
    """Which backups (by time) rotation keeps; pure, so it is tested with dates alone."""
    newest_per_day: dict = {}
    newest_per_week: dict = {}
    for stamp in sorted(set(stamps), reverse=True):
        newest_per_day.setdefault(stamp.date(), stamp)
        newest_per_week.setdefault(stamp.isocalendar()[:2], stamp)
    return set(list(newest_per_day.values())[:max(daily, 0)]) | set(list(newest_per_week.values())[:max(weekly, 0)])


def backup_stamp(path: Path) -> datetime | None:
    if not path.is_dir() or not path.name.startswith(PREFIX):
        return None
    try:
        return datetime.strptime(path.name[len(PREFIX):], STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None  # not one of ours: never deleted


def backups_rotate(*, directory: Path, daily: int, weekly: int) -> list[str]:
    """Delete the backups rotation does not keep and any partial run's leftovers; returns the names deleted."""
    stamped = {path: stamp for path in directory.iterdir() if (stamp := backup_stamp(path))}
    keep = rotation_keep(list(stamped.values()), daily=daily, weekly=weekly)
    doomed = [path for path, stamp in stamped.items() if stamp not in keep]
    doomed += [path for path in directory.iterdir() if path.is_dir() and path.name.startswith(PARTIAL_PREFIX)]
    for path in sorted(doomed):
        shutil.rmtree(path)
    return sorted(path.name for path in doomed)


def backup_scheduled(*, now: datetime | None = None) -> dict:
    """One scheduled run: a complete backup under OPS_BACKUP_DIR, then rotation."""
    directory = Path(settings.OPS_BACKUP_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime(STAMP)
    partial, final = directory / f"{PARTIAL_PREFIX}{stamp}", directory / f"{PREFIX}{stamp}"
    if partial.exists():
        shutil.rmtree(partial)  # a redelivered run of the same second starts over
    manifest = backup_run(directory=str(partial))
    partial.rename(final)
    deleted = backups_rotate(directory=directory, daily=settings.OPS_BACKUP_KEEP_DAILY,
                             weekly=settings.OPS_BACKUP_KEEP_WEEKLY)
    return {"backup": str(final), "files": len(manifest["files"]), "counts": manifest["counts"],
            "deleted": deleted}
