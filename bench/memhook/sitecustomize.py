"""Start tracemalloc in a process of the memory benchmark, and dump a snapshot on SIGUSR2.

Put on a process's PYTHONPATH by ``bench/memory_web.py`` only, with
``FLOORVIEW_BENCH_TRACEMALLOC`` naming the directory the snapshots go to; the
project's own code knows nothing of it. A signal handler runs between two
bytecodes of the main thread (the reactor's), so the snapshot sees the
process at rest.
"""

import os

_directory = os.environ.get("FLOORVIEW_BENCH_TRACEMALLOC")
if _directory:
    import gc
    import signal
    import tracemalloc
    from pathlib import Path

    _dumps = iter(("zero", "open", "closed", "later"))

    def _dump(signum, frame):
        name = next(_dumps, "extra")
        Path(_directory).mkdir(parents=True, exist_ok=True)
        gc.collect()
        path = Path(_directory) / name
        tracemalloc.take_snapshot().dump(str(path))
        Path(f"{path}.done").touch()  # written last: the snapshot is whole

    tracemalloc.start(1)
    signal.signal(signal.SIGUSR2, _dump)
