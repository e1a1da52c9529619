"""Every CCTools flag of the submitters, the factory and work_queue_status is accepted, short and long
(the flags of Debian's coop-computing-tools 9.9: work_queue_submit_common, X_submit_workers,
work_queue_factory --help, work_queue_status --help; see the reference note). Each row says what the
flag does here, or that it is accepted with a one-line warning because it has no meaning here."""
import logging

import pytest
from click.testing import CliRunner

from workqueue.cli import factory as factory_cli
from workqueue.cli import status as status_cli
from workqueue.cli import submit

WARNS = "warn"


class FakeSystem:
    """A batch system that records what it was asked to submit."""

    def __init__(self, **options):
        self.options = options
        self.submitted = []

    def submit(self, count, spec):
        self.submitted.append((count, spec))
        return [f"job{i}" for i in range(count)]


@pytest.fixture(autouse=True)
def root_logging():
    """The commands set up logging (-d, -o); give the root logger back as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:], root.level = handlers, level


@pytest.fixture
def pw(tmp_path):
    path = tmp_path / "pw"
    path.write_text("secret")
    return str(path)


@pytest.fixture
def fake_batch(monkeypatch):
    made = []

    def get(name, **options):
        made.append(FakeSystem(**options))
        return made[-1]
    monkeypatch.setattr(submit.batch, "get", get)
    return made


def _both(short, long, *row):
    """A row for each spelling of one flag."""
    return [(flag, *row) for flag in (short, long)]


# flag, its value (None for a switch), and what it does: a check on (spec, system options) or WARNS
COMMON = [
    *_both("-M", "--master-name", "proj", lambda s, o: s.manager_name == "proj"),
    *_both("-N", "--name", "proj", lambda s, o: s.manager_name == "proj"),
    ("--manager-name", "proj", lambda s, o: s.manager_name == "proj"),
    *_both("-C", "--catalog", "cat:9097", lambda s, o: s.worker_flags == ["-C", "cat:9097"]),
    *_both("-t", "--timeout", "60", lambda s, o: s.timeout == 60 and "60" in s.worker_arguments()),
    *_both("-d", "--debug", "all", lambda s, o: s.worker_flags == ["-d", "all"]),
    *_both("-w", "--tcp-window-size", "65536", WARNS),
    *_both("-i", "--min-backoff", "2", lambda s, o: s.worker_flags == ["-i", "2.0"]),
    *_both("-b", "--max-backoff", "30", lambda s, o: s.worker_flags == ["-b", "30.0"]),
    *_both("-z", "--disk-threshold", "100", WARNS),
    *_both("-A", "--arch", "x86_64", WARNS),
    *_both("-O", "--os", "linux", WARNS),
    *_both("-a", "--advertise", None, WARNS),
    *_both("-s", "--workdir", "/scratch", lambda s, o: s.worker_flags == ["-s", "/scratch"]),
    *_both("-P", "--password", "PW", lambda s, o: s.password_file.endswith("pw")),
    *_both("-c", "--cores", "4", lambda s, o: s.cores == 4 and s.requested_cores() == 4),
    ("--memory", "2000", lambda s, o: s.memory == 2000),
    ("--disk", "3000", lambda s, o: s.disk == 3000),
    *_both("-E", "--worker-options", "--single-shot", lambda s, o: "--single-shot" in s.worker_arguments()),
    ("-p", "--exclusive", lambda s, o: s.extra_batch_options == "--exclusive"),
]
ARRAYS = [("-j", None, lambda s, o: True)]
NOT_CONDOR = _both("-r", "--requirements", "Memory > 4", WARNS)
CONDOR = [
    *_both("-r", "--requirements", "Memory > 4", lambda s, o: o["requirements"] == ("Memory > 4",)),
    ("--class-ad", "+Group = 'x'", lambda s, o: o["class_ads"] == ("+Group = 'x'",)),
    ("--autosize", None, lambda s, o: o["autosize"] is True),
    ("--docker-universe", "debian", WARNS),
]
SUBMITTERS = {"slurm": COMMON + ARRAYS + NOT_CONDOR, "sge": COMMON + ARRAYS + NOT_CONDOR,
              "pbs": COMMON + ARRAYS + NOT_CONDOR, "torque": COMMON + ARRAYS + NOT_CONDOR,
              "condor": COMMON + CONDOR}
SUBMIT_ROWS = [(system, *row) for system, rows in SUBMITTERS.items() for row in rows]


@pytest.mark.parametrize("system, flag, value, check", SUBMIT_ROWS,
                         ids=[f"{r[0]}{r[1]}" for r in SUBMIT_ROWS])
def test_submitters_accept_every_cctools_flag(system, flag, value, check, fake_batch, pw, tmp_path):
    by_name = flag in ("-M", "-N", "--name", "--master-name", "--manager-name")
    argv = ["-S", str(tmp_path), flag] + ([] if value is None else [pw if value == "PW" else value])
    argv += ["3"] if by_name else ["localhost", "9123", "3"]
    result = CliRunner().invoke(getattr(submit, system), argv)
    assert result.exit_code == 0, result.output
    count, spec = fake_batch[-1].submitted[-1]
    assert count == 3
    if check == WARNS:
        assert "warning:" in result.output and "has no meaning here" in result.output and len(result.output.splitlines()) == 2
    else:
        assert check(spec, fake_batch[-1].options), (spec, fake_batch[-1].options)
        assert "warning" not in result.output


def test_submitters_default_to_one_core_asked_and_offered(fake_batch, tmp_path):
    result = CliRunner().invoke(submit.slurm, ["-S", str(tmp_path), "localhost", "9123", "1"])
    assert result.exit_code == 0, result.output
    spec = fake_batch[-1].submitted[-1][1]
    assert spec.requested_cores() == 1 and spec.worker_arguments()[2:4] == ["--cores", "1"]


# -- work_queue_factory ------------------------------------------------------------------------
@pytest.fixture
def factory_runs(monkeypatch):
    """The factory command up to the point where it would start cycling: the Factory it built."""
    built = []
    monkeypatch.setattr(factory_cli, "_run", lambda pool, parent: built.append((pool, parent)))
    return built


FACTORY = [
    *_both("-T", "--batch-type", "slurm", lambda f: f.batch_type == "slurm"),
    ("-T", "amazon", lambda f: f.batch_type == "ec2"),
    *_both("-M", "--manager-name", "proj", lambda f: f.manager_name == "proj"),
    ("-N", "proj", lambda f: f.manager_name == "proj"),
    ("--master-name", "proj", lambda f: f.manager_name == "proj"),
    *_both("-C", "--config-file", "CONFIG", lambda f: f.max_workers == 7),
    *_both("-F", "--foremen-name", "fm", WARNS),
    ("--catalog", "cat:9097", lambda f: f.catalog == "cat:9097" and "--catalog" in f.spec().worker_flags),
    *_both("-P", "--password", "PW", lambda f: f.password_file.endswith("pw")),
    *_both("-S", "--scratch-dir", "SCRATCH", lambda f: f.spec().workdir.endswith("scratch")),
    ("--run-factory-as-manager", None, WARNS),
    ("--parent-death", None, lambda f: True),
    *_both("-d", "--debug", "all", lambda f: True),
    *_both("-o", "--debug-file", "LOG", lambda f: True),
    *_both("-O", "--debug-file-size", "10", lambda f: True),
    *_both("-w", "--min-workers", "2", lambda f: f.min_workers == 2),
    *_both("-W", "--max-workers", "20", lambda f: f.max_workers == 20),
    ("--workers-per-cycle", "3", lambda f: f.workers_per_cycle == 3),
    *_both("-t", "--timeout", "60", lambda f: f.timeout == 60),
    ("--factory-timeout", "600", lambda f: f.factory_timeout == 600),
    ("--tasks-per-worker", "4", lambda f: f.tasks_per_worker == 4),
    *_both("-c", "--capacity", None, lambda f: f.use_capacity),
    ("--cores", "4", lambda f: f.cores == 4 and f.spec().requested_cores() == 4),
    ("--gpus", "1", lambda f: f.gpus == 1 and "--gpus" in f.spec().worker_arguments()),
    ("--memory", "2000", lambda f: f.memory == 2000),
    ("--disk", "3000", lambda f: f.disk == 3000),
    ("--autosize", None, WARNS),  # HTCondor only; the table runs it with -T local
    ("--env", "A=b", lambda f: f.spec().env == {"A": "b"}),
    *_both("-E", "--extra-options", "--single-shot", lambda f: "--single-shot" in f.spec().worker_arguments()),
    ("--worker-binary", "BINARY", lambda f: f.spec().worker_program()[0].endswith("worker.sh")),
    ("--wrapper", "nice -n 5", lambda f: f.spec().worker_command()[:3] == ["nice", "-n", "5"]),
    ("--wrapper-input", "f.txt", WARNS),
    ("--runos", "img", WARNS),
    ("--python-package", "env.tar.gz", WARNS),
    ("--python-env", "env.tar.gz", WARNS),
    *_both("-B", "--batch-options", "--exclusive", lambda f: f.extra_batch_options == "--exclusive"),
    ("--amazon-config", "conf", WARNS),
    ("--condor-requirements", "Memory > 4", WARNS),  # HTCondor only; the table runs it with -T local
    ("--mesos-master", "m", WARNS), ("--mesos-path", "p", WARNS), ("--mesos-preload", "p", WARNS),
    ("--k8s-image", "i", WARNS), ("--k8s-worker-image", "i", WARNS),
]


@pytest.mark.parametrize("flag, value, check", FACTORY, ids=[f"{r[0]}={r[1]}" for r in FACTORY])
def test_factory_accepts_every_cctools_flag(flag, value, check, factory_runs, pw, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text('{"max-workers": 7}')
    (tmp_path / "worker.sh").write_text("#!/bin/sh\n")
    given = {"PW": pw, "CONFIG": "config.json", "SCRATCH": str(tmp_path / "scratch"), "LOG": "f.log",
             "BINARY": "worker.sh"}.get(value, value)
    by_name = flag in ("-M", "-N", "--master-name", "--manager-name")
    argv = [flag] + ([] if given is None else [given]) + ([] if by_name else ["localhost", "9123"])
    result = CliRunner().invoke(factory_cli.factory, argv)
    assert result.exit_code == 0, result.output
    pool = factory_runs[-1][0]
    if check == WARNS:
        assert "warning:" in result.output and ("no meaning here" in result.output or "only" in result.output)
    else:
        assert check(pool), vars(pool)
        assert "warning" not in result.output


def test_factory_version_and_help():
    assert CliRunner().invoke(factory_cli.factory, ["-v"]).exit_code == 0
    assert CliRunner().invoke(factory_cli.factory, ["--version"]).exit_code == 0
    help_text = CliRunner().invoke(factory_cli.factory, ["-h"]).output
    assert "no meaning here" in help_text and "--foremen-name" in help_text


# -- work_queue_status -------------------------------------------------------------------------
@pytest.fixture
def status_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(status_cli, "_show_master", lambda *a: calls.append(("master", a)))
    monkeypatch.setattr(status_cli, "_show_catalog", lambda *a: calls.append(("catalog", a)))
    return calls


STATUS = [
    # flag, value, needs HOST PORT, check on (kind, arguments)
    *_both("-Q", "--statistics", None, True, lambda k, a: a[2] == "queue"),
    *_both("-M", "--project-name", "proj", False, lambda k, a: k == "catalog" and a[1] == "proj"),
    *_both("-W", "--workers", None, True, lambda k, a: a[2] == "workers"),
    *_both("-T", "--tasks", None, True, lambda k, a: a[2] == "tasks"),
    *_both("-A", "--able-workers", None, True, lambda k, a: a[2] == "categories"),
    *_both("-R", "--resources", None, False, lambda k, a: k == "catalog" and a[2] == "resources"),
    ("--capacity", None, True, lambda k, a: a[2] == "capacity"),
    *_both("-l", "--verbose", None, True, lambda k, a: a[3] is True),
    *_both("-C", "--catalog", "cat:9097", False, lambda k, a: k == "catalog" and a[0] == "cat:9097"),
    *_both("-d", "--debug", "all", True, lambda k, a: True),
    ("--where", "x > 1", False, WARNS),
    *_both("-t", "--timeout", "9", True, lambda k, a: a[5] == 9),
    *_both("-o", "--debug-file", "LOG", True, lambda k, a: True),
    *_both("-O", "--debug-rotate-max", "1000000", True, lambda k, a: True),
]


@pytest.mark.parametrize("flag, value, host, check", STATUS, ids=[r[0] for r in STATUS])
def test_status_accepts_every_cctools_flag(flag, value, host, check, status_calls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [flag] + ([] if value is None else ["s.log" if value == "LOG" else value])
    argv += ["localhost", "9123"] if host else []
    result = CliRunner().invoke(status_cli.status, argv)
    assert result.exit_code == 0, result.output
    kind, arguments = status_calls[-1]
    if check == WARNS:
        assert "warning:" in result.output and "no meaning here" in result.output
    else:
        assert check(kind, arguments), arguments
    assert kind == ("master" if host else "catalog")


def test_status_version():
    for flag in ("-v", "--version"):
        assert CliRunner().invoke(status_cli.status, [flag]).exit_code == 0


# -- work_queue_worker ---------------------------------------------------------------------------
WORKER_FLAGS_IGNORED = [
    ("--debug-rotate-max", "10M"), ("--disable-symlinks", None), ("--disk-allocation", None), ("-A", "x86_64"),
    ("--arch", "x86_64"), ("-O", "linux"), ("--os", "linux"), ("-w", "65536"), ("--tcp-window-size", "65536"),
    ("--bandwidth", "1000"), ("--volatility", "0.1"), ("--foreman", None), ("-f", "fm"), ("--foreman-name", "fm"),
    ("--foreman-port", "9000"), ("-Z", "pf"), ("--foreman-port-file", "pf"), ("-F", "3"), ("--fast-abort", "3"),
    ("--specify-log", "l"), ("--tlq", "1"), ("-z", "100"), ("--disk-threshold", "100"), ("--memory-threshold", "100"),
    ("-a", None), ("--advertise", None), ("-c", None), ("--measure-capacity", None), ("--ssl", None),
    ("--connection-mode", "by_ip"), ("--from-factory", "f"), ("--task-wrapper", "w"), ("--coprocess-cores", "1"),
    ("--coprocess-memory", "1"), ("--coprocess-disk", "1"), ("--coprocess-gpus", "1"),
]


@pytest.mark.parametrize("flag, value", WORKER_FLAGS_IGNORED)
def test_the_worker_accepts_every_cctools_flag_it_cannot_honour_with_a_warning(flag, value, capsys):
    from workqueue.cli import worker as worker_cli
    argv = [flag] + ([] if value is None else [value]) + ["localhost", "9123"]
    context = worker_cli.main.make_context("work_queue_worker", argv)
    assert context.params["address"] == ("localhost", "9123")
    assert "has no meaning here" in capsys.readouterr().err


def test_the_worker_honours_wall_time_and_parent_death():
    from workqueue.cli import worker as worker_cli
    context = worker_cli.main.make_context("work_queue_worker", ["--wall-time", "3600", "--parent-death", "h", "1"])
    assert context.params["wall_time"] == 3600 and context.params["parent_death"] is True
