"""The sandbox's own bookkeeping: what it measures of the files a task leaves."""
import os

from workqueue.worker.sandbox import _entry_size, _tree_size


def test_disk_use_counts_nested_files_and_not_symlink_targets(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x" * 3000)
    (tmp_path / "g").write_bytes(b"y" * 1000)
    (tmp_path / "link").symlink_to(tmp_path / "g")
    size, entries = _tree_size(str(tmp_path))
    assert entries == 3
    assert 4000 <= size < 4000 + 200  # the symlink counts as its own few bytes, not its target's


def test_a_file_that_vanishes_mid_scan_leaves_the_rest_counted(tmp_path):
    for name in "abc":
        (tmp_path / name).write_bytes(b"x" * 1000)
    with os.scandir(tmp_path) as scan:
        entries = list(scan)
    os.unlink(entries[0].path)
    assert sum(_entry_size(entry) for entry in entries) == 2000


def test_an_unreadable_tree_says_so(tmp_path):
    assert _tree_size(str(tmp_path / "missing")) == (0, -1)
