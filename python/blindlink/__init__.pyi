"""Type stubs of the blindlink package (see ``__init__.py`` for the documentation)."""

import os
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import leakage as leakage

__all__ = [
    "BlindlinkError",
    "ConfigError",
    "InputError",
    "ProtocolError",
    "SynthData",
    "MatchResult",
    "synth",
    "encode",
    "read_clks",
    "match",
    "evaluate",
    "link",
    "serve",
    "leakage",
]

_PathLike = Union[str, "os.PathLike[str]"]

class BlindlinkError(Exception): ...
class ConfigError(BlindlinkError): ...
class InputError(BlindlinkError): ...
class ProtocolError(BlindlinkError): ...

class SynthData(NamedTuple):
    a: Any
    b: Any
    truth: Any
    names: Tuple[str, str, str]

class MatchResult(NamedTuple):
    a_index: npt.NDArray[np.int64]
    b_index: npt.NDArray[np.int64]
    score: npt.NDArray[np.float64]

def synth(
    persons: int = ...,
    seed: int = ...,
    locale: str = ...,
    scenario: str = ...,
    overlap: float = ...,
    *,
    as_frames: Optional[bool] = ...,
    **rates: float,
) -> SynthData: ...
def encode(
    rows: Any,
    schema: _PathLike,
    secret: Union[bytes, bytearray, str, "os.PathLike[str]"],
    *,
    threads: Optional[int] = ...,
    era_dates: str = ...,
) -> npt.NDArray[np.uint8]: ...
def read_clks(path: _PathLike) -> npt.NDArray[np.uint8]: ...
def match(
    a: Union[npt.ArrayLike, _PathLike],
    b: Union[npt.ArrayLike, _PathLike],
    threshold: float,
    solver: str = ...,
    *,
    blocking: Optional[str] = ...,
    top_k: Optional[int] = ...,
    threads: Optional[int] = ...,
) -> MatchResult: ...
def evaluate(
    pairs: Any,
    truth: Any,
    *,
    thresholds: Union[None, str, Tuple[float, float, float]] = ...,
    records: Optional[Tuple[int, int]] = ...,
    a: Any = ...,
    b: Any = ...,
) -> Dict[str, Any]: ...
def link(
    config: _PathLike,
    *,
    insecure_loopback: bool = ...,
    quiet: bool = ...,
    seed: Optional[int] = ...,
) -> Dict[str, Any]: ...
def serve(
    config: _PathLike,
    *,
    sessions: Optional[int] = ...,
    timeout: Optional[float] = ...,
    insecure_loopback: bool = ...,
    quiet: bool = ...,
    seed: Optional[int] = ...,
) -> List[Dict[str, Any]]: ...
