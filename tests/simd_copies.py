"""Run a child script under a chosen copy of the C kernels (``INFERCAST_SIMD``)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_copy(child: str, isa: str | None) -> dict:
    """``child`` (formatted with ``root=``) in a fresh interpreter with ``INFERCAST_SIMD=isa``
    (the best copy when None); returns the JSON object on its last stdout line."""
    env = dict(os.environ)
    env.pop("INFERCAST_SIMD", None)
    if isa is not None:
        env["INFERCAST_SIMD"] = isa
    r = subprocess.run([sys.executable, "-c", child.format(root=ROOT)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])
