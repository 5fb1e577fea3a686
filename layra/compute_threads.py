"""How many threads torch and BLAS use in a web process (query embedding, MaxSim re-ranking).

One by default (WEB_COMPUTE_THREADS): a query is a few tokens and a re-rank a few small products, and with the
web, the workers and ingestion sharing the cores, more threads only spin against each other. On this 2-core
machine under load, a MiniLM query took 686 ms (p50) with 2 threads and 33 ms with 1; MaxSim over 20 pages 163 ms
and 48 ms. The libraries read these variables when they start their thread pools, so this runs before either is
imported (gunicorn.conf.py, layra/wsgi.py); a value already in the environment wins. Celery workers keep the
libraries' defaults: a batch of page images uses every core.
"""

import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def web_compute_threads_limit() -> str:
    threads = os.environ.get("WEB_COMPUTE_THREADS", "1")
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, threads)
    return threads
