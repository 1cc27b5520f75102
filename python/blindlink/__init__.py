"""blindlink: privacy-preserving record linkage, from Python.

The functions run blindlink's Rust code (the same code as the ``blindlink`` command line), so
they give the CLI's bytes, links and error messages:

- :func:`synth` generates synthetic populations with ground truth (``blindlink synth``);
- :func:`encode` turns records into CLKs, a numpy ``uint8`` array (``blindlink encode``);
- :func:`match` links two CLK arrays (``blindlink match``), :func:`evaluate` scores links
  against a truth (``blindlink evaluate``);
- :func:`link` and :func:`serve` run one party's side of a linkage session over mutual TLS
  (``blindlink link`` / ``blindlink serve``);
- :mod:`blindlink.leakage` has the attacks on encodings and their metrics.

Errors are :class:`BlindlinkError` subclasses: :class:`ConfigError` (a party config, schema or
secret), :class:`InputError` (records, files, arguments), :class:`ProtocolError` (a session).
Long work releases the GIL.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import BlindlinkError, ConfigError, InputError, ProtocolError



def _pandas() -> Any:
    """pandas if installed (optional: without it, tables are lists of dicts). Imported on
    first use, so that encoding a CSV file or matching arrays does not pay for its import."""
    try:
        import pandas

        return pandas
    except ImportError:  # pragma: no cover - exercised only without pandas
        return None


def _frame_type() -> Any:
    """The DataFrame class if pandas is already imported (a caller holding a DataFrame has
    imported it), else None."""
    pandas = sys.modules.get("pandas")
    return getattr(pandas, "DataFrame", None)

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

PathLike = Union[str, "os.PathLike[str]"]


class SynthData(NamedTuple):
    """A synthetic data set: the two parties' files and the truth.

    ``a`` is ``registry.csv`` (or ``hospital_a.csv``), ``b`` is ``insurer.csv`` (or
    ``hospital_b.csv``); each is a pandas DataFrame of strings, or a list of dicts without
    pandas. ``names`` are the file names ``blindlink synth`` writes.
    """

    a: Any
    b: Any
    truth: Any
    names: Tuple[str, str, str]


class MatchResult(NamedTuple):
    """Links (or candidate pairs): row indices into ``a`` and ``b`` and the Dice scores."""

    a_index: np.ndarray
    b_index: np.ndarray
    score: np.ndarray


def _table(header: Sequence[str], rows: List[List[str]], as_frame: bool) -> Any:
    if as_frame:
        return _pandas().DataFrame(rows, columns=list(header), dtype=object)
    return [dict(zip(header, row)) for row in rows]


def synth(
    persons: int = 10_000,
    seed: int = 1,
    locale: str = "ja",
    scenario: str = "registry-insurer",
    overlap: float = 0.8,
    *,
    as_frames: Optional[bool] = None,
    **rates: float,
) -> SynthData:
    """Generates a synthetic two-party population, as ``blindlink synth`` does.

    The rows equal those of the CSV files ``blindlink synth --persons P --seed S --locale L
    --scenario C --overlap O`` writes. ``locale`` is ``"ja"`` or ``"en"``; ``scenario``
    ``"registry-insurer"`` or ``"two-hospitals"``; ``rates`` are the CLI's rate options by
    their flag names (``kanji_variant_rate=0.1``, ``keying_error_rate=0.0``, ...).
    ``as_frames`` (default: whether pandas is installed) returns DataFrames, else lists of
    dicts.
    """
    pandas = _pandas() if as_frames is not False else None
    if as_frames is None:
        as_frames = pandas is not None
    if as_frames and pandas is None:
        raise ImportError("as_frames=True needs pandas")
    files = _native.synth(scenario, locale, persons, overlap, seed, dict(rates))
    tables = [_table(header, rows, as_frames) for _, header, rows in files]
    names = tuple(name for name, _, _ in files)
    return SynthData(tables[0], tables[1], tables[2], names)  # type: ignore[arg-type]


def _is_pathlike(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def _columns_of(rows: Any) -> Tuple[List[str], List[List[Any]]]:
    """Header and columns (lists of cells) of a DataFrame or a sequence of mappings."""
    frame = _frame_type()
    if frame is not None and isinstance(rows, frame):
        header = [str(c) for c in rows.columns]
        return header, [rows.iloc[:, i].tolist() for i in range(rows.shape[1])]
    records = list(rows)
    header: List[Any] = []
    seen = set()
    for record in records:
        if not isinstance(record, Mapping):
            raise TypeError("rows must be a DataFrame, a sequence of mappings or a CSV path")
        for key in record:
            if key not in seen:
                seen.add(key)
                header.append(key)
    return [str(h) for h in header], [[r.get(h) for r in records] for h in header]


def _schema(schema: Any) -> Tuple[str, str]:
    """The schema's text and its name in messages: a path (``os.PathLike``, or a ``str``
    naming an existing file) is read, any other ``str`` is the schema itself."""
    if isinstance(schema, os.PathLike) or (
        isinstance(schema, str) and "\n" not in schema and os.path.isfile(schema)
    ):
        path = os.fspath(schema)
        try:
            with open(path, encoding="utf-8") as f:
                return f.read(), path
        except OSError as e:
            raise ConfigError(f"cannot read schema {path}: {e.strerror}") from None
    if isinstance(schema, str):
        return schema, "<text>"
    raise TypeError("schema must be the schema text (TOML or clkhash JSON) or a path")


def _clk_array(data: bytearray, count: int, width: int) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).reshape(count, width)


def encode(
    rows: Any,
    schema: Union[str, "os.PathLike[str]"],
    secret: Union[bytes, str, "os.PathLike[str]"],
    *,
    threads: Optional[int] = None,
    era_dates: str = "strict",
) -> np.ndarray:
    """Encodes records into CLKs: one row of ``uint8`` per record, the CLK's bytes.

    ``rows`` is a DataFrame, a sequence of dicts (column → value; ``None``/NaN is empty) or the
    path of a CSV file with a header row. ``schema`` is the schema's text (native TOML or
    clkhash JSON) or its path; ``secret`` the linkage secret's bytes (a ``str`` as UTF-8; the
    contents of a ``blindlink keygen`` file) or a key file's path (``pathlib.Path``).
    ``era_dates`` is ``"strict"`` or ``"lenient"`` as ``blindlink encode --era-dates``.

    The bytes equal those of ``blindlink encode`` on the same CSV, schema and secret. The first
    bad row raises :class:`InputError` with the CLI's message; for in-memory rows the input is
    named ``rows`` and ``rows[i]`` is line ``i + 2`` (the header is line 1).
    """
    if era_dates not in ("strict", "lenient"):
        raise ValueError('era_dates must be "strict" or "lenient"')
    text, name = _schema(schema)
    lenient = era_dates == "lenient"
    if _is_pathlike(rows):
        data, count, width, notes = _native.encode_file(
            os.fspath(rows), text, name, secret, threads, lenient
        )
    else:
        header, columns = _columns_of(rows)
        data, count, width, notes = _native.encode_columns(
            header, columns, text, name, secret, "rows", threads, lenient
        )
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    return _clk_array(data, count, width)


def read_clks(path: PathLike) -> np.ndarray:
    """Reads a CLK file (anonlink JSON or blindlink's binary format) into a ``uint8`` array."""
    data, count, width = _native.read_clk_file(os.fspath(path), "")
    return _clk_array(data, count, width)


def _clks(value: Any, side: str) -> Tuple[bytes, int, str]:
    if _is_pathlike(value):
        path = os.fspath(value)
        data, count, width = _native.read_clk_file(path, side)
        return bytes(data), width, f"{path} (--{side})"
    array = np.ascontiguousarray(value, dtype=np.uint8)
    if array.ndim != 2:
        raise InputError(f"{side}: expected a 2-d uint8 array (one CLK per row), got {array.ndim}-d")
    return array.tobytes(), array.shape[1], side


def match(
    a: Any,
    b: Any,
    threshold: float,
    solver: str = "greedy",
    *,
    blocking: Optional[str] = None,
    top_k: Optional[int] = None,
    threads: Optional[int] = None,
) -> MatchResult:
    """Links two CLK sets by Dice similarity, as ``blindlink match`` does.

    ``a`` and ``b`` are ``uint8`` arrays (one CLK per row, as :func:`encode` returns) or CLK
    file paths. Pairs scoring at least ``threshold`` are candidates; ``solver`` ``"greedy"``
    (anonlink's, highest score first) or ``"optimal"`` makes them one-to-one links, ``"none"``
    keeps every candidate. ``blocking`` is the CLI's ``lsh:bands=B,bits=K[,seed=S]``,
    ``top_k`` keeps each record of ``a``'s best K candidates. The pairs and scores equal the
    rows of the CLI's output file, in the same order.
    """
    a_bytes, a_width, a_name = _clks(a, "a")
    b_bytes, b_width, b_name = _clks(b, "b")
    ia, ib, scores, _ = _native.match_clks(
        a_bytes, a_width, a_name, b_bytes, b_width, b_name, float(threshold), solver,
        blocking, top_k, threads,
    )
    return MatchResult(
        np.asarray(ia, dtype=np.int64),
        np.asarray(ib, dtype=np.int64),
        np.asarray(scores, dtype=np.float64),
    )


def _read_csv_pairs(path: str) -> Dict[str, List[str]]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        columns: Dict[str, List[str]] = {h: [] for h in header}
        for row in reader:
            for h, v in zip(header, row):
                columns[h].append(v.strip())
    return columns


def _columns(value: Any) -> Dict[str, List[Any]]:
    """Named columns of a DataFrame, a mapping of columns, a CSV path or a list of dicts."""
    if _is_pathlike(value):
        return _read_csv_pairs(os.fspath(value))
    frame = _frame_type()
    if frame is not None and isinstance(value, frame):
        return {str(c): value[c].tolist() for c in value.columns}
    if isinstance(value, Mapping):
        return {str(k): list(v) for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], Mapping):
        return {k: [r.get(k) for r in value] for k in value[0]}
    raise TypeError("expected a DataFrame, a mapping of columns, a CSV path or a list of dicts")


def _pairs(value: Any, what: str) -> Tuple[List[int], List[int], Optional[List[float]]]:
    if isinstance(value, MatchResult):
        return value.a_index.tolist(), value.b_index.tolist(), value.score.tolist()
    if isinstance(value, tuple) and len(value) in (2, 3) and not isinstance(value[0], (int, np.integer)):
        scores = [float(s) for s in value[2]] if len(value) == 3 else None
        return [int(i) for i in value[0]], [int(i) for i in value[1]], scores
    if isinstance(value, (list, np.ndarray)) and len(value) and not isinstance(value[0], Mapping):
        rows = [tuple(p) for p in value]
        scores = [float(p[2]) for p in rows] if rows and len(rows[0]) > 2 else None
        return [int(p[0]) for p in rows], [int(p[1]) for p in rows], scores
    columns = _columns(value)
    if "a_index" not in columns or "b_index" not in columns:
        raise InputError(f"{what}: expected columns a_index,b_index, found {','.join(columns)}")
    scores = [float(s) for s in columns["score"]] if "score" in columns else None
    return [int(i) for i in columns["a_index"]], [int(i) for i in columns["b_index"]], scores


def _truth(truth: Any, a: Any, b: Any) -> Tuple[List[int], List[int]]:
    """True pairs as indices: ``a_index,b_index`` columns or pairs, or a synth truth with
    record ids (two-hospitals: ``hospital_a_record_id``/``hospital_b_record_id``;
    registry-insurer: ``registry_record_id``/``insurer_record_id``) mapped through the
    ``record_id`` columns of ``a`` and ``b``."""
    if isinstance(truth, (MatchResult, tuple)) or (
        isinstance(truth, (list, np.ndarray))
        and (len(truth) == 0 or not isinstance(truth[0], Mapping))
    ):
        ta, tb, _ = _pairs(truth, "truth")
        return ta, tb
    columns = _columns(truth)
    if "a_index" in columns and "b_index" in columns:
        return [int(i) for i in columns["a_index"]], [int(i) for i in columns["b_index"]]
    for ka, kb in (("hospital_a_record_id", "hospital_b_record_id"), ("registry_record_id", "insurer_record_id")):
        if ka in columns and kb in columns:
            if a is None or b is None:
                raise InputError(f"truth has record ids ({ka}, {kb}): pass a= and b= (the two files) to map them to rows")
            ids_a = {v: i for i, v in enumerate(_columns(a)["record_id"])}
            ids_b = {v: i for i, v in enumerate(_columns(b)["record_id"])}
            pairs = [(ids_a[x], ids_b[y]) for x, y in zip(columns[ka], columns[kb]) if x and y and x in ids_a and y in ids_b]
            return [p[0] for p in pairs], [p[1] for p in pairs]
    raise InputError(f"truth: expected columns a_index,b_index (or a synth truth), found {','.join(columns)}")


def evaluate(
    pairs: Any,
    truth: Any,
    *,
    thresholds: Union[None, str, Tuple[float, float, float]] = None,
    records: Optional[Tuple[int, int]] = None,
    a: Any = None,
    b: Any = None,
) -> Dict[str, Any]:
    """Linkage quality of ``pairs`` against ``truth``: the numbers ``blindlink evaluate``
    prints (``precision``, ``recall``, ``f_measure``, true/false positives, false negatives,
    pairs completeness and quality; ``reduction_ratio`` with ``records=(len_a, len_b)``; with
    ``thresholds`` (``"0.5:0.95:0.05"`` or a ``(start, end, step)`` tuple) a ``sweep`` of
    ``(threshold, pairs, precision, recall, f_measure)``).

    ``pairs`` is a :class:`MatchResult`, ``(a_index, b_index[, score])`` sequences, a list of
    pairs, or a DataFrame / CSV path with ``a_index,b_index[,score]``. ``truth`` is the same
    with ``a_index,b_index``, or a synth truth with record ids together with ``a`` and ``b``.
    """
    pa, pb, scores = _pairs(pairs, "pairs")
    ta, tb = _truth(truth, a, b)
    sweep = None
    if isinstance(thresholds, str):
        parts = thresholds.split(":")
        try:
            start, end, step = (float(p) for p in parts)
        except ValueError:
            raise InputError(f"thresholds {thresholds!r}: expected START:END:STEP, e.g. 0.5:0.95:0.05") from None
        sweep = (start, end, step)
    elif thresholds is not None:
        sweep = tuple(float(t) for t in thresholds)  # type: ignore[assignment]
    return _native.evaluate(pa, pb, scores, ta, tb, sweep, records)


def link(
    config: PathLike,
    *,
    insecure_loopback: bool = False,
    quiet: bool = True,
    seed: Optional[int] = None,
) -> Dict[str, Any]:
    """Runs ``blindlink link --config CONFIG``: one linkage session with the configured peer.

    Writes ``links.csv``, ``ledger.json`` and ``report.txt`` into the config's output
    directory (nothing on failure) and returns a summary: ``party``, ``peer``,
    ``session_id``, ``counts``, ``output_dir``, ``seconds``. ``seed`` fixes the session's
    randomness (tests only).
    """
    return _native.link(os.fspath(config), insecure_loopback, quiet, seed)


def serve(
    config: PathLike,
    *,
    sessions: Optional[int] = None,
    timeout: Optional[float] = None,
    insecure_loopback: bool = False,
    quiet: bool = True,
    seed: Optional[int] = None,
) -> List[Dict[str, Any]]:
    """Runs ``blindlink serve --config CONFIG`` until ``sessions`` sessions completed (default:
    the config's ``[server] max_sessions``, 0 = no limit) or ``timeout`` seconds passed or
    Ctrl-C (then running sessions finish). Returns a summary per completed session, as
    :func:`link`. Call it in a thread to link with it from the same process.
    """
    return _native.serve(os.fspath(config), sessions, timeout, insecure_loopback, quiet, seed)


from . import leakage  # noqa: E402  (needs the names above)
