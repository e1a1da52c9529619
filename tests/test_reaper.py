"""The worker's reaper: a removed file leaves its place at once, its bytes go in the background."""
import os

from workqueue.data import fastio
from workqueue.data.cache import Cache
from workqueue.data.reaper import Reaper
from workqueue.data.transfer import Incoming


def test_a_removed_file_is_gone_at_once_and_its_name_free_for_a_new_one(tmp_path):
    reaper = Reaper(str(tmp_path / "trash"))
    path = tmp_path / "big"
    path.write_bytes(b"x" * 100_000)
    reaper.remove(str(path))
    assert not path.exists()
    path.write_bytes(b"new")  # a file of the same name arriving meanwhile
    reaper.close()
    assert path.read_bytes() == b"new", "the reaper removed what it was given, not its successor"
    assert not (tmp_path / "trash").exists()


def test_directories_and_missing_paths(tmp_path):
    reaper = Reaper(str(tmp_path / "trash"))
    tree = tmp_path / "tree"
    (tree / "a").mkdir(parents=True)
    (tree / "a" / "f").write_bytes(b"f")
    reaper.remove(str(tree))
    reaper.remove(str(tmp_path / "never-was"))
    assert not tree.exists()
    reaper.close()
    reaper.remove(str(tmp_path / "never-was"))  # closed: still no error
    late = tmp_path / "late"
    late.write_bytes(b"l")
    reaper.remove(str(late))  # a removal after close is done in line
    assert not late.exists()


def test_a_trash_left_by_a_previous_worker_is_emptied(tmp_path):
    (tmp_path / "trash").mkdir()
    (tmp_path / "trash" / "7").write_bytes(b"old")
    Reaper(str(tmp_path / "trash")).close()
    assert not (tmp_path / "trash").exists()


def test_the_cache_removes_through_its_reaper_and_a_file_arriving_again_stays(tmp_path):
    reaper = Reaper(str(tmp_path / "trash"))
    cache = Cache(str(tmp_path / "cache"), reaper=reaper)
    data = os.urandom(10_000)
    digest = fastio.hash_bytes(data)

    def arrive(xfer):
        incoming = cache.receive(digest, len(data), xfer)
        assert isinstance(incoming, Incoming)
        assert incoming.add(0, data, True, digest)
        cache.admit(digest, incoming, 0o644)
        cache.use(digest, keep=False)

    arrive(1)
    cache.release(digest)  # not kept: removed
    assert not os.path.exists(cache.path(digest))
    arrive(2)
    reaper.close()
    with open(cache.path(digest), "rb") as f:
        assert f.read() == data


def test_past_its_bound_the_reaper_removes_in_line(tmp_path, monkeypatch):
    from workqueue.data import reaper as worker_reaper
    monkeypatch.setattr(worker_reaper, "PENDING_MAX", 10)
    reaper = Reaper(str(tmp_path / "trash"))
    big = tmp_path / "big"
    big.write_bytes(b"x" * 11)
    reaper.remove(str(big))
    assert not big.exists()
    assert os.listdir(tmp_path / "trash") == [], "too large to wait in the trash: removed at once"
    reaper.close()
