"""The scheduled backup: rotation decided on dates alone, and a run that backs up, then deletes what rotation drops."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from operations.backup import backup_verify
from operations.backup_schedule import backup_scheduled, rotation_keep
from operations.tasks import scheduled_backup


def _at(day: str, hour: int = 2) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def test_rotation_keeps_the_newest_of_each_recent_day_and_week():
    daily_series = [_at("2025-01-01") + timedelta(days=n) for n in range(60)]  # up to Sat 2025-03-01
    keep = rotation_keep(daily_series, daily=7, weekly=4)
    last_seven = {_at("2025-02-23") + timedelta(days=n) for n in range(7)}
    # Weeks 9 and 8 are covered by the dailies (Sat 03-01, Sun 02-23); weeks 7 and 6 add their Sundays.
    assert keep == last_seven | {_at("2025-02-16"), _at("2025-02-09")}


def test_rotation_keeps_one_backup_a_day_the_newest():
    stamps = [_at("2025-03-10", 1), _at("2025-03-10", 23), _at("2025-03-10", 5), _at("2025-03-09", 4)]
    assert rotation_keep(stamps, daily=1, weekly=0) == {_at("2025-03-10", 23)}
    assert rotation_keep(stamps, daily=2, weekly=0) == {_at("2025-03-10", 23), _at("2025-03-09", 4)}
    assert rotation_keep(stamps, daily=0, weekly=0) == set()
    assert rotation_keep([], daily=7, weekly=4) == set()


def test_weekly_reaches_back_past_gaps():
    # Backups only now and then: the weeks that have one count, not calendar weeks.
    stamps = [_at("2025-03-12"), _at("2025-01-15"), _at("2024-12-01"), _at("2024-06-30")]
    assert rotation_keep(stamps, daily=1, weekly=3) == {_at("2025-03-12"), _at("2025-01-15"), _at("2024-12-01")}


@pytest.mark.django_db
def test_scheduled_run_backs_up_then_rotates(tmp_path, settings):
    settings.OPS_BACKUP_DIR = str(tmp_path)
    settings.OPS_BACKUP_KEEP_DAILY = 3
    settings.OPS_BACKUP_KEEP_WEEKLY = 3
    old = ["20250311T020000Z", "20250310T020000Z", "20250310T010000Z", "20250309T020000Z", "20250302T020000Z",
           "20250220T020000Z"]
    for stamp in old:
        (tmp_path / f"backup-{stamp}").mkdir()
    (tmp_path / ".partial-20250311T030000Z").mkdir()  # a run that crashed
    (tmp_path / "manual-copy").mkdir()  # not one of ours

    result = backup_scheduled(now=_at("2025-03-12"))

    assert result["backup"] == str(tmp_path / "backup-20250312T020000Z")
    backup_verify(directory=result["backup"])  # complete, checksums match
    assert result["deleted"] == [".partial-20250311T030000Z", "backup-20250220T020000Z", "backup-20250310T010000Z"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "backup-20250302T020000Z", "backup-20250309T020000Z", "backup-20250310T020000Z", "backup-20250311T020000Z",
        "backup-20250312T020000Z", "manual-copy"]


@pytest.mark.django_db
def test_beat_runs_the_backup_task_daily(tmp_path, settings):
    entry = settings.CELERY_BEAT_SCHEDULE["operations.scheduled_backup"]
    assert entry["task"] == scheduled_backup.name == "operations.scheduled_backup"
    assert entry["schedule"].hour == {settings.OPS_BACKUP_HOUR}
    settings.OPS_BACKUP_DIR = str(tmp_path / "nested" / "backups")  # made on first run
    result = scheduled_backup.apply().get()
    assert [p.name for p in (tmp_path / "nested" / "backups").iterdir()] == [result["backup"].rsplit("/", 1)[1]]
    call_command("restore", result["backup"], "--dry-run")
