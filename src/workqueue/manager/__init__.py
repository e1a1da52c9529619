"""The master: the user's API (``api.Manager``), its event loop (``loop``) and the rooms the loop
feeds and reads: the door strangers knock at, staging and data, placement, revocations, categories,
status, history, and the user's commands."""
from .api import Manager, ManagerLoopStopped

__all__ = ["Manager", "ManagerLoopStopped"]
