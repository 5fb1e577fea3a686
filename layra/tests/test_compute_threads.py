"""Web processes compute with one thread (layra/compute_threads.py); workers keep the libraries' defaults."""

import json
import os
import subprocess
import sys

from tests.plugin import ROOT

_PROBE = """
import json, sys
{setup}
import numpy, torch
from threadpoolctl import threadpool_info
print(json.dumps({{"torch": torch.get_num_threads(),
                   "blas": [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]}}))
"""


def _threads(setup: str, **env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                             "MKL_NUM_THREADS", "WEB_COMPUTE_THREADS")}
    out = subprocess.run([sys.executable, "-c", _PROBE.format(setup=setup)], cwd=ROOT, env={**clean, **env},
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_wsgi_module_limits_torch_and_blas_to_one_thread():
    assert _threads("import layra.wsgi") == {"torch": 1, "blas": [1]}


def test_the_setting_and_an_explicit_variable_win():
    assert _threads("import layra.wsgi", WEB_COMPUTE_THREADS="2")["torch"] == 2
    explicit = {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    assert _threads("import layra.wsgi", **explicit) == {"torch": 2, "blas": [2]}


def test_other_processes_keep_the_defaults():
    defaults = _threads("")
    if (os.cpu_count() or 1) > 1:
        assert defaults["torch"] > 1 and defaults["blas"][0] > 1, defaults
