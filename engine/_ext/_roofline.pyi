import numpy as np
from numpy.typing import NDArray

def layout() -> dict[str, int]: ...
def openmp_enabled() -> bool: ...
def max_threads() -> int: ...
def simd_isa() -> str: ...
def roofline(mt: NDArray[np.float64], ct: NDArray[np.float64], db: NDArray[np.float64],
             model_idx: NDArray[np.int32], chip_idx: NDArray[np.int32], tp: NDArray[np.int32],
             pp: NDArray[np.int32], batch: NDArray[np.int32], prompt: NDArray[np.int32],
             output: NDArray[np.int32], w_dt: NDArray[np.int8], kv_dt: NDArray[np.int8],
             act_dt: NDArray[np.int8], out_f: NDArray[np.float64], out_bound: NDArray[np.int8],
             out_fits: NDArray[np.uint8], out_maxb: NDArray[np.int64], n_threads: int = 1,
             loop_decode: bool = False, out_offset: int = 0) -> None: ...
def stream_pass(model_idx: NDArray[np.int32], chip_idx: NDArray[np.int32],
                tp: NDArray[np.int32], pp: NDArray[np.int32], batch: NDArray[np.int32],
                prompt: NDArray[np.int32], output: NDArray[np.int32], w_dt: NDArray[np.int8],
                kv_dt: NDArray[np.int8], act_dt: NDArray[np.int8], out_f: NDArray[np.float64],
                out_bound: NDArray[np.int8], out_fits: NDArray[np.uint8],
                out_maxb: NDArray[np.int64], n_threads: int = 1) -> None: ...
EXPM1_SATURATED: float
def _expm1_nonpos(x: NDArray[np.float64], out: NDArray[np.float64]) -> None: ...
def roofline_grid(mt: NDArray[np.float64], ct: NDArray[np.float64], db: NDArray[np.float64],
                  model_idx: NDArray[np.int32], chip_idx: NDArray[np.int32],
                  tp: NDArray[np.int32], pp: NDArray[np.int32], batch: NDArray[np.int32],
                  prompt: NDArray[np.int32], output: NDArray[np.int32], w_dt: NDArray[np.int8],
                  kv_dt: NDArray[np.int8], act_dt: NDArray[np.int8], out_f: NDArray[np.float64],
                  out_bound: NDArray[np.int8], out_fits: NDArray[np.uint8],
                  out_maxb: NDArray[np.int64], n_threads: int = 1,
                  loop_decode: bool = False) -> None: ...
