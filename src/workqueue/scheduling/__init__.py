"""Pure decisions, fed by the master's loop (no sockets, clock or files): which task goes to which
worker (``scheduler``, ``shapes``), what a category's tasks are given (``categories``), and how
many workers a run could use (``capacity``)."""
