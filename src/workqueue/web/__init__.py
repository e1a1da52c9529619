"""Seeing a run: the live dashboard and ``/metrics`` (server, source, views, metrics, static/), the
notebook's HTML (notebook), progress bars (progress) and the performance log read back (perflog).
Imported only when used, so ``import workqueue`` (and every worker) pays nothing for it."""
