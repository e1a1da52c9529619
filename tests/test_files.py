import pytest

from workqueue.files import DigestMemo, File, check_remote_name


@pytest.mark.parametrize("name", ["/etc/passwd", "..", "../x", "a/../../x", "", "a\0b", "."])
def test_remote_names_that_escape_the_sandbox_are_refused(name):
    with pytest.raises(ValueError):
        check_remote_name(name)


@pytest.mark.parametrize("name, normal", [("a", "a"), ("a/b/../c", "a/c"), ("./x", "x"), ("d/e", "d/e")])
def test_names_inside_the_sandbox_are_normalized(name, normal):
    assert check_remote_name(name) == normal


def test_remote_name_defaults_to_the_basename():
    assert File("/some/dir/in.txt").remote == "in.txt"


def test_digest_changes_when_the_file_changes(tmp_path):
    path = tmp_path / "f"
    path.write_text("one")
    memo = DigestMemo()
    first = memo.digest(str(path))[0]
    assert memo.digest(str(path))[0] == first
    path.write_text("two, longer")
    assert memo.digest(str(path))[0] != first
