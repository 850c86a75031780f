"""Type stubs for the Cython market kernel (ext/_market.pyx)."""
import numpy as np
import numpy.typing as npt

def layout() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], int]: ...
def market_values(x: npt.NDArray[np.float64], yp: npt.NDArray[np.float64], out: npt.NDArray[np.float64],
                  n_threads: int = 1) -> npt.NDArray[np.float64]: ...
def market_summaries(x: npt.NDArray[np.float64], yp: npt.NDArray[np.float64],
                     hist: npt.NDArray[np.int64] | npt.NDArray[np.uint16],
                     span: npt.NDArray[np.int64], sums: npt.NDArray[np.float64],
                     nonfinite: npt.NDArray[np.int64], clamped: npt.NDArray[np.int64],
                     ev_series: npt.NDArray[np.int64], ev_op: npt.NDArray[np.int64],
                     ev_threshold: npt.NDArray[np.float64],
                     ev_count: npt.NDArray[np.int64]) -> int: ...
