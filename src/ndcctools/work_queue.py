"""``from ndcctools import work_queue`` gives the very same module object as ``import work_queue``."""
import sys

import work_queue as _work_queue

sys.modules[__name__] = _work_queue
