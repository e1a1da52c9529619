"""The worker: its session with the master (``session``, ``main``), the tasks it runs (``tasks``,
``sandbox``, ``coprocess``, ``pyfunc``), the files it holds and fetches (``files``, ``peers``,
``peer_server``, ``urls``, ``archives``, ``temps``, ``workspace``) and what it offers (``resources``,
``grant``, ``gpus``, ``lifetime``). Started by ``python -m workqueue.worker HOST PORT``."""
