"""What a run runs: each line of a file as a command, or a command template filled in from
arguments (``::: ARG ...``, ``-a FILE``), with GNU parallel's replacement strings.

``{}`` the argument, ``{.}`` without its extension, ``{/}`` its basename, ``{//}`` its directory,
``{/.}`` its basename without extension, ``{#}`` the job's sequence number; ``{1}``, ``{2./}``...
the same for one of several argument sources (``::: a b ::: x y`` runs every pair, as GNU
parallel). Arguments are shell-quoted where they need it; a template with no replacement string
gets `` {}`` appended, as in GNU parallel. Pure but for reading the files named.
"""
from __future__ import annotations

import itertools
import os
import re
import shlex
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

ARGUMENT_SEPARATOR = ":::"
_REPLACEMENT = re.compile(r"\{(\d*)(#|\.|/|//|/\.)?\}")


class BadInput(ValueError):
    """A run's input cannot be used; the message says which and why."""


class Job(NamedTuple):
    seq: int  # 1-based, GNU parallel's Seq: the job's place in the input, the same in every run
    command: str
    args: Tuple[str, ...]  # the arguments filled in ({} etc.); empty for a line of a command file
    declared: Optional[Dict[str, Any]] = None  # resources from a ``#workqueue:`` line above it


RESOURCE_HEADER = "#workqueue:"
_HEADER_VALUES = {"cores": float, "memory": int, "disk": int, "gpus": int, "category": str}


def read_lines(path: str, what: str) -> List[str]:
    """The non-empty lines of ``path``, less # comments in a command file (an argument may begin
    with #) but for ``#workqueue:`` lines; BadInput if it is missing, unreadable or holds none."""
    commands = "command" in what
    if path != "-" and not os.path.exists(path):
        raise BadInput(f"{what} {path!r} does not exist")
    if path != "-" and os.path.isdir(path):
        raise BadInput(f"{what} {path!r} is a directory, not a file")
    try:
        with (open(0, closefd=False) if path == "-" else open(path)) as stream:
            lines = [line.strip() if commands else line.rstrip("\r\n") for line in stream]
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"cannot read {what} {path!r}: {error}") from None
    kept = [line for line in lines
            if line and not (commands and line.startswith("#") and not line.startswith(RESOURCE_HEADER))]
    runnable = [line for line in kept if not line.startswith(RESOURCE_HEADER)] if commands else kept
    if not runnable:
        raise BadInput(f"{what} {path!r} holds no {'commands' if commands else 'arguments'}"
                       " (it is empty, or only blank lines and # comments)")
    return kept


def split_sources(words: Sequence[str]) -> Tuple[List[str], List[List[str]]]:
    """The words before the first ``:::`` and each ``:::`` group's arguments."""
    if ARGUMENT_SEPARATOR not in words:
        return list(words), []
    first = words.index(ARGUMENT_SEPARATOR)
    groups: List[List[str]] = []
    for word in words[first:]:
        if word == ARGUMENT_SEPARATOR:
            groups.append([])
        else:
            groups[-1].append(word)
    if any(not group for group in groups):
        raise BadInput(f"'{ARGUMENT_SEPARATOR}' must be followed by at least one argument")
    return list(words[:first]), groups


def uses_replacements(template: str) -> bool:
    return _REPLACEMENT.search(template) is not None


def from_file(path: str) -> List[Job]:
    """Each line of a command file is one command, run as it is. A line ``#workqueue: cores=2
    memory=1000 category=big`` (any of cores, memory, disk, gpus, category) sets what the lines
    below it declare, until the next such line (``#workqueue:`` alone: back to the options')."""
    jobs: List[Job] = []
    declared: Optional[Dict[str, Any]] = None
    for line in read_lines(path, "command file"):
        if line.startswith(RESOURCE_HEADER):
            declared = parse_header(line, path) or None
        else:
            jobs.append(Job(len(jobs) + 1, line, (), declared))
    return jobs


def parse_header(line: str, path: str) -> Dict[str, Any]:
    """The settings of a ``#workqueue:`` line; BadInput naming a setting that is not one."""
    settings: Dict[str, Any] = {}
    for word in line[len(RESOURCE_HEADER):].split():
        name, equals, value = word.partition("=")
        kind = _HEADER_VALUES.get(name)
        try:
            if kind is None or not equals or not value:
                raise ValueError
            settings[name] = kind(value)
            if kind is not str and not 0 <= settings[name] < float("inf"):
                raise ValueError
        except ValueError:
            raise BadInput(f"{path!r}: {word!r} in {line!r} is not a setting: give NAME=VALUE with NAME one of "
                           f"{', '.join(_HEADER_VALUES)} (numbers >= 0; memory and disk in MB)") from None
    return settings


def from_template(template: str, sources: Sequence[Sequence[str]]) -> List[Job]:
    """One job per combination of the sources' arguments (one source: one job per argument)."""
    if not template.strip():
        raise BadInput("the command is empty")
    if not sources:
        raise BadInput(f"the command {template!r} needs arguments: give them after '{ARGUMENT_SEPARATOR}' "
                       "or in a file with -a FILE")
    if not uses_replacements(template):
        template += " {}"
    _check_positions(template, len(sources))
    return [Job(seq, fill(template, args, seq), args)
            for seq, args in enumerate(itertools.product(*sources), 1)]


def fill(template: str, args: Sequence[str], seq: int, quote: bool = True) -> str:
    """``template`` with its replacement strings replaced for ``args``, the job numbered ``seq``;
    arguments shell-quoted unless ``quote`` is False (a file name, not a command)."""
    as_is = _quote if quote else str
    def replace(match: "re.Match[str]") -> str:
        position, kind = match.group(1), match.group(2) or ""  # {#} alone: the job number
        if kind == "#":
            return str(seq)
        if position:
            return as_is(_transform(args[int(position) - 1], kind))
        return " ".join(as_is(_transform(arg, kind)) for arg in args)
    return _REPLACEMENT.sub(replace, template)


def _transform(arg: str, kind: str) -> str:
    if kind == ".":
        return _without_extension(arg)
    if kind == "/":
        return os.path.basename(arg)
    if kind == "//":
        return os.path.dirname(arg) or "."
    if kind == "/.":
        return _without_extension(os.path.basename(arg))
    return arg


def _without_extension(path: str) -> str:
    """GNU parallel's {.}: the last extension off, never a leading dot of a hidden file's name."""
    head, tail = os.path.split(path)
    stem, dot, _ = tail.rpartition(".")
    return os.path.join(head, stem) if dot and stem else path


def _quote(value: str) -> str:
    return shlex.quote(value) if value else "''"


def _check_positions(template: str, n_sources: int) -> None:
    for match in _REPLACEMENT.finditer(template):
        position = match.group(1)
        if position and not 1 <= int(position) <= n_sources:
            raise BadInput(f"{match.group(0)} names argument source {position}, but the run has "
                           f"{n_sources} (one per '{ARGUMENT_SEPARATOR}' group or -a FILE)")
        if position and match.group(2) == "#":
            raise BadInput(f"{match.group(0)} is not a replacement string: {{#}} is the job number")


def jobs_from_words(words: Sequence[str], arg_files: Sequence[str]) -> List[Job]:
    """The jobs a command line asks for: ``FILE``, ``COMMAND ::: ARG...`` or ``-a FILE COMMAND``."""
    head, groups = split_sources(words)
    sources = [read_lines(path, "argument file") for path in arg_files] + groups
    if sources:
        if not head:
            raise BadInput("no command given before the arguments (workqueue run COMMAND ::: ARG ...)")
        return from_template(" ".join(head), sources)
    if not head:
        raise BadInput("nothing to run: give a FILE of commands, COMMAND ::: ARG ..., or -a FILE COMMAND")
    if len(head) > 1:
        extra = " ".join(head[1:])
        raise BadInput(f"{head[0]!r} is followed by {extra!r}: options go before FILE "
                       f"(workqueue run [OPTIONS] FILE), and a COMMAND needs '{ARGUMENT_SEPARATOR} ARG ...' or -a FILE")
    if not os.path.exists(head[0]) and uses_replacements(head[0]):
        raise BadInput(f"the command {head[0]!r} uses replacement strings but has no arguments: "
                       f"give them after '{ARGUMENT_SEPARATOR}' or with -a FILE")
    return from_file(head[0])


__all__ = ["BadInput", "Job", "jobs_from_words", "fill", "from_file", "from_template", "read_lines"]
