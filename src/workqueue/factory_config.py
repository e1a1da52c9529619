"""The factory's JSON configuration file (``work_queue_factory -C FILE``), in CCTools' keys.

Read at start and again whenever the file changes, so a pool can be resized while it runs. A file
that does not parse, or a value of the wrong kind, is reported once and the previous values kept.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Callable, Dict, Optional, Tuple

logger = logging.getLogger(__name__)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a number")
    return value


def _whole(value: Any) -> int:
    number = _number(value)
    if number != int(number):
        raise TypeError(f"{value!r} is not a whole number")
    return int(number)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


# CCTools key -> (Factory attribute, how to read the value)
KEYS: Dict[str, Tuple[str, Callable[[Any], Any]]] = {
    "manager-name": ("manager_name", _text), "master-name": ("manager_name", _text),
    "max-workers": ("max_workers", _whole), "min-workers": ("min_workers", _whole),
    "workers-per-cycle": ("workers_per_cycle", _whole), "tasks-per-worker": ("tasks_per_worker", _number),
    "timeout": ("timeout", _number), "worker-extra-options": ("extra_worker_options", _text),
    "cores": ("cores", _number), "memory": ("memory", _whole), "disk": ("disk", _whole),
    "gpus": ("gpus", _whole), "factory-timeout": ("factory_timeout", _number),
}
IGNORED = {"foremen-name": "there are no foremen here"}


class ConfigFile:
    """One configuration file, applied to a factory whenever its modification time changes."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self._seen: Optional[Tuple[float, int]] = None
        self._complained = False

    def read(self) -> Dict[str, Any]:
        """The file's settings as Factory attributes; raises ValueError saying what is wrong."""
        with open(self.path) as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError("the configuration is not a JSON object")
        settings: Dict[str, Any] = {}
        for key, value in data.items():
            if key in IGNORED:
                logger.warning("factory config: %r has no meaning here (%s); ignored", key, IGNORED[key])
            elif key == "condor-requirements":
                settings["condor_requirements"] = _text(value)
            elif key in KEYS:
                attribute, read = KEYS[key]
                try:
                    settings[attribute] = read(value)
                except TypeError as error:
                    raise ValueError(f"{key}: {error}") from None
            else:
                raise ValueError(f"unknown key {key!r}")
        return settings

    def changed(self) -> bool:
        stat = os.stat(self.path)
        mark = (stat.st_mtime, stat.st_size)
        if mark == self._seen:
            return False
        self._seen = mark
        return True

    def apply(self, factory: Any) -> None:
        """Set the factory's attributes from the file if it changed since the last call."""
        try:
            if not self.changed():
                return
            settings = self.read()
        except (OSError, ValueError) as error:
            if not self._complained:
                logger.warning("factory config %s: %s; keeping the previous settings", self.path, error)
            self._complained = True
            return
        self._complained = False
        requirements = settings.pop("condor_requirements", None)
        if requirements is not None and hasattr(factory.system, "options"):
            factory.system.options.requirements = [requirements]
        if "manager_name" in settings:
            factory.host = factory.port = None
        for attribute, value in settings.items():
            setattr(factory, attribute, value)
        logger.info("factory config %s read: %s", self.path, ", ".join(f"{k}={v}" for k, v in settings.items()))
