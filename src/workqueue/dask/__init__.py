"""Dask graphs on workqueue: ``dask.compute(x, scheduler=workqueue.dask.get)``.

Needs Dask (``pip install dask``); ``import workqueue`` does not import this package, so
``import workqueue.dask`` first. See ``runner.get`` for the options.
"""
from .remote import UnpicklableResult
from .runner import get

__all__ = ["get", "UnpicklableResult"]
