"""Files in motion and at rest: streaming them in chunks (``fastio``, ``transfer``), the worker's
content-addressed ``cache``, outputs landing on the master (``outputs``), temporary files, their
``replicas`` and ``lineage``, and where a worker fetches an input from (``peer_sources``)."""
