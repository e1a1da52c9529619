"""The benchmark harness: ``python -m bench`` measures workqueue beside its references.

Every figure is printed beside a reference measured in the same run (the raw spawn rate, raw ZeroMQ
on loopback, CCTools Work Queue when Debian's packages are installed, Dask when installed), and the
ratio between them is what to compare across machines: absolute numbers vary.
"""
