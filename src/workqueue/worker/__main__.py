"""``python -m workqueue.worker HOST PORT [options]``: the worker's command line (workqueue.cli.worker)."""
from ..cli.worker import main

main()
