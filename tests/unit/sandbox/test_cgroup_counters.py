"""The cgroup counters read after every command keep their files open (open() is dear)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from corral.sandbox.procs import Cgroups


@pytest.fixture
def group(tmp_path: Path) -> Cgroups:
    (tmp_path / "pids.events").write_text("max 0\n")
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 2\n")
    return Cgroups(pids_events=tmp_path / "pids.events", oom_file=tmp_path / "memory.events")


class Opens:
    """Counts every way the counters could open a file: os.open and Path.read_text."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fds: list[int] = []
        self.read_texts = 0
        real_open, real_read_text = os.open, Path.read_text

        def spy_open(path: str | Path, flags: int, *args: int, **kwargs: int) -> int:
            fd = real_open(path, flags, *args, **kwargs)
            self.fds.append(fd)
            return fd

        def spy_read_text(path: Path, *args: str, **kwargs: str) -> str:
            self.read_texts += 1
            return real_read_text(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", spy_open)
        monkeypatch.setattr(Path, "read_text", spy_read_text)


def rewrite(path: Path, text: str) -> None:
    """Change the file in place (same inode), as the kernel's counter changes."""
    with path.open("r+") as f:
        f.write(text)
        f.truncate()


def test_each_counter_file_is_opened_once_and_still_sees_changes(
    group: Cgroups, monkeypatch: pytest.MonkeyPatch
) -> None:
    opens = Opens(monkeypatch)
    assert [group.pids_hits() for _ in range(3)] == [0, 0, 0]
    assert [group.oom_kills() for _ in range(3)] == [2, 2, 2]
    assert group.pids_events is not None and group.oom_file is not None
    rewrite(group.pids_events, "max 17\n")
    rewrite(group.oom_file, "low 0\nhigh 0\nmax 9\noom 3\noom_kill 3\n")
    assert (group.pids_hits(), group.oom_kills()) == (17, 3)
    assert len(opens.fds) == 2 and opens.read_texts == 0


def test_remove_and_close_close_the_files(
    group: Cgroups, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    opens = Opens(monkeypatch)
    group.pids_hits(), group.oom_kills()
    group.dirs.append(tmp_path / "gone")  # remove() tolerates a missing dir
    assert group.remove()
    for fd in opens.fds:
        with pytest.raises(OSError):
            os.fstat(fd)
    # A read after close still answers, without leaving a file open.
    assert group.pids_hits() == 0 and len(opens.fds) == 2
    group.close()  # idempotent


def test_a_file_pread_cannot_reread_is_read_the_plain_way(
    group: Cgroups, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pread(fd: int, n: int, offset: int) -> bytes:
        raise OSError(errno.ESPIPE, "Illegal seek")

    monkeypatch.setattr(os, "pread", no_pread)
    opens = Opens(monkeypatch)
    assert group.pids_hits() == 0 and group.pids_hits() == 0
    assert len(opens.fds) == 1 and opens.read_texts == 2
    with pytest.raises(OSError):
        os.fstat(opens.fds[0])  # the fd of the failed pread did not leak


def test_a_missing_file_counts_zero(tmp_path: Path) -> None:
    group = Cgroups(pids_events=tmp_path / "nope", oom_file=None)
    assert group.pids_hits() == 0 and group.oom_kills() == 0
