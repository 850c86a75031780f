"""Build the compiled kernels in ``ext/`` into the ``engine._ext`` package.

Every ``ext/*.pyx`` becomes ``engine._ext.<name>``. OpenMP is used when the
compiler accepts ``-fopenmp`` (probed with a tiny test program); otherwise the
extensions are built serially and ``engine.show_config()`` says so. Never
``-ffast-math``: it flips flush-to-zero for the whole process.

Wheels do not need Cython: when the generated ``.c`` files are present (sdist
built with ``cythonize``) and Cython is not importable, they are compiled as C.
"""
import glob
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _compiler_accepts_openmp() -> bool:
    if os.environ.get("INFERCAST_NO_OPENMP"):
        return False
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()[0]
    if shutil.which(cc) is None:
        return False
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        c_file = os.path.join(tmp, "t.c")
        with open(c_file, "w") as fh:
            fh.write(src)
        try:
            res = subprocess.run([cc, "-fopenmp", c_file, "-o", os.path.join(tmp, "t")],
                                 capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
        return res.returncode == 0


def _compiler_accepts(flag: str) -> bool:
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        c_file = os.path.join(tmp, "t.c")
        with open(c_file, "w") as fh:
            fh.write("int main(void){return 0;}\n")
        try:
            res = subprocess.run([cc, flag, c_file, "-o", os.path.join(tmp, "t")],
                                 capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
        return res.returncode == 0


USE_OPENMP = _compiler_accepts_openmp()
# x86-64-v2 (2009+: SSE4.1/4.2, POPCNT) turns floor/ceil into one roundsd instead of a
# libm call; every x86-64 server of the last decade has it. Opt out: INFERCAST_PORTABLE=1.
ARCH_FLAG = ("-march=x86-64-v2" if platform.machine() in ("x86_64", "AMD64")
             and not os.environ.get("INFERCAST_PORTABLE")
             and _compiler_accepts("-march=x86-64-v2") else None)
print(f"infercast setup: OpenMP {'enabled' if USE_OPENMP else 'NOT available: serial fallback'}",
      file=sys.stderr)

# -ffp-contract=off: no fused multiply-add contraction, so the AVX-512/AVX2/baseline
# copies of ext/roofline_simd_body.h (see ext/roofline_simd.h) round exactly like each
# other and like the scalar twins (MoE lanes' vector expm1 aside: within 2 ulp).
compile_args = ["-O3", "-ffp-contract=off", "-Wno-psabi"] + ([ARCH_FLAG] if ARCH_FLAG else [])
link_args = []
if USE_OPENMP:
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")

pyx_sources = sorted(glob.glob(os.path.join("ext", "*.pyx")))
try:
    from Cython.Build import cythonize
    HAVE_CYTHON = True
except ImportError:  # building from an sdist with pre-generated C
    HAVE_CYTHON = False

extensions = []
for pyx in pyx_sources:
    name = os.path.splitext(os.path.basename(pyx))[0]
    src = pyx if HAVE_CYTHON else pyx[:-4] + ".c"
    extensions.append(Extension(
        f"engine._ext.{name}",
        sources=[src],
        depends=sorted(glob.glob(os.path.join("ext", "*.h"))),
        include_dirs=[np.get_include(), "ext"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
                       ("INFERCAST_OPENMP", "1" if USE_OPENMP else "0")],
    ))

if HAVE_CYTHON:
    extensions = cythonize(
        extensions,
        compile_time_env={"HAVE_OPENMP": USE_OPENMP},
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "nonecheck": False,
            "embedsignature": True,
        },
    )

setup(ext_modules=extensions)
