"""Ray vs Dask distributed on this machine: cold start of a local 2-worker cluster (import,
start, first task back), and whether shutdown leaves processes behind. Run with the Python of
a venv that has the engine: `python benchmarks/engines.py dask|ray`. Numbers go to docs/sweep.md."""
from __future__ import annotations

import os
import sys
import time

import psutil


def _square(x):
    return x * x


def descendants() -> list:
    return [p.cmdline()[-1][-60:] for p in psutil.Process(os.getpid()).children(recursive=True) if p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE]


def dask() -> tuple[float, float, int]:
    t0 = time.perf_counter()
    from dask.distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    assert client.submit(_square, 3).result() == 9
    t1 = time.perf_counter()
    client.close()
    cluster.close()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, descendants()


def ray() -> tuple[float, float, int]:
    t0 = time.perf_counter()
    import ray as r
    r.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    f = r.remote(_square)
    assert r.get(f.remote(3)) == 9
    t1 = time.perf_counter()
    r.shutdown()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, descendants()


if __name__ == "__main__":
    which = sys.argv[1]
    start, stop, left = {"dask": dask, "ray": ray}[which]()
    time.sleep(2)
    left2 = descendants()
    print(f"{which}: start {start:.2f} s, shutdown {stop:.2f} s, child processes left at once {left}, after 2 s {left2}")
