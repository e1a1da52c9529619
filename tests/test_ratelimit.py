"""The throttle on repeated log lines: a few per kind and interval, the rest counted."""
import logging

from workqueue.ratelimit import LimitedLog, Throttle


def test_a_kind_gets_its_budget_per_interval_and_the_rest_is_counted():
    throttle = Throttle(per_interval=3, interval=10.0)
    assert [throttle.allow("drop", 100.0 + i / 10) for i in range(8)] == [True] * 3 + [False] * 5
    assert throttle.take_suppressed("drop") == 5
    assert throttle.take_suppressed("drop") == 0, "the count restarts once taken"
    assert throttle.allow("drop", 110.0), "a new interval, a new budget"


def test_kinds_are_throttled_apart():
    throttle = Throttle(per_interval=1, interval=10.0)
    assert throttle.allow("a", 0.0) and not throttle.allow("a", 1.0)
    assert throttle.allow("b", 1.0)
    assert throttle.take_suppressed("a") == 1 and throttle.take_suppressed("b") == 0


def test_the_limited_log_writes_a_few_lines_then_says_how_many_it_left_out(caplog):
    now = [0.0]
    limited = LimitedLog(logging.getLogger("test.ratelimit"), Throttle(per_interval=2, interval=60.0),
                         clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.ratelimit"):
        for i in range(100):
            limited("garbage", logging.WARNING, "dropped message %d", i)
        now[0] = 61.0
        limited("garbage", logging.WARNING, "dropped message %d", 100)
    assert [r.getMessage() for r in caplog.records] == [
        "dropped message 0", "dropped message 1", "dropped message 100 (98 similar message(s) not logged)"]
