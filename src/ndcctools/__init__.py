"""The ``ndcctools`` namespace of CCTools' Python packages, as far as workqueue provides it."""
