"""Remote names: check_remote_name normalizes at submit; is_clean_remote_name is the wire's yes or no."""
import posixpath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workqueue import files
from workqueue.wire import names
from workqueue.wire.names import (
    MAX_REMOTE_NAME,
    check_remote_name,
    is_clean_remote_name,
)


def test_files_still_exports_check_remote_name():
    assert files.check_remote_name is names.check_remote_name


@pytest.mark.parametrize("name", ["a", "in.txt", "d/e", "d/e/f.txt", ".hidden", "..dots", "a..", "a/.b/c",
                                  "x" * MAX_REMOTE_NAME, "sp ace", "é"])
def test_clean_names_are_accepted(name):
    assert is_clean_remote_name(name)
    assert check_remote_name(name) == name


@pytest.mark.parametrize("name", ["", "/etc/passwd", "/", ".", "..", "../x", "a/../../x", "a/..", "./a", "a/.",
                                  "a//b", "out.txt//etc/x", "a/", "a/./b", "a\0b", "x" * (MAX_REMOTE_NAME + 1),
                                  None, 7, b"a", ["a"]])
def test_names_that_are_not_clean_are_refused(name):
    assert not is_clean_remote_name(name)


def test_check_remote_name_refuses_a_name_too_long_for_the_wire():
    with pytest.raises(ValueError, match="at most"):
        check_remote_name("d/" + "x" * MAX_REMOTE_NAME)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="a./\0", max_size=12))
def test_a_clean_name_is_exactly_a_name_check_remote_name_keeps(name):
    try:
        kept = check_remote_name(name) == name
    except ValueError:
        kept = False
    assert is_clean_remote_name(name) == kept
    if kept:
        assert posixpath.normpath(name) == name and not name.startswith("/")
