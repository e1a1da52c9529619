"""``workqueue run``: files of commands and argument lists as tasks, GNU parallel's way.

Rooms: ``commands`` (what runs: lines, ``:::`` and ``-a`` arguments, replacement strings),
``joblog`` (GNU parallel's job log, written as each task ends; what ``--resume`` skips),
``policy`` (retries, ``--halt``, the exit status), ``results`` (``--results DIR``, output order),
``summary`` (live progress and the closing line), ``workers`` (where the workers come from:
local, a batch system, or anyone with the port and password), ``runner`` (the loop that ties
them to a ``Manager``). ``cli/run.py`` is only the click command over ``runner``.
"""
