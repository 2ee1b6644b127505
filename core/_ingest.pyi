"""Type stub of core/_ingest.pyx: the claims' row checks and conversions, one pass per column.

``first`` is an int16 numpy array over the batch's rows; every function lowers ``first[row]``
to the number of each check the row fails (``NO_CHECK``: a check the column does not have)."""
import numpy as np
import pyarrow as pa

NO_CHECK: int

Column = pa.Array | pa.ChunkedArray

def null_rows(col: Column, first: np.ndarray, k_null: int) -> None: ...
def claim_ids(col: Column, first: np.ndarray, k_null: int, k_dup: int) -> None: ...
KeyColumns = list[tuple[Column, Column | None]]  # (own column, fallback column or None)
def claim_and_key_ids(col: Column | None, first: np.ndarray, k_null: int, k_dup: int,
                      keys: KeyColumns = ...) -> list[tuple[np.ndarray, int]]: ...
def key_ids(keys: KeyColumns, n: int) -> list[tuple[np.ndarray, int]]: ...
def _collide_for_tests(bits: int) -> None: ...  # keep `bits` low bits of every id hash
def money(col: Column, first: np.ndarray, k_null: int, k_beyond: int,
          k_negative: int) -> np.ndarray: ...  # int64 fen
def exceeds(a: np.ndarray, b: np.ndarray, first: np.ndarray, k: int) -> None: ...
def dates(col: Column, first: np.ndarray, k_null: int, k_period: int, lo: int,
          hi: int) -> np.ndarray: ...  # int32 days
def booleans(col: Column, first: np.ndarray, k_null: int) -> np.ndarray: ...  # bool
def narrow_dtype(t: pa.DataType) -> np.dtype: ...
def integers(col: Column, first: np.ndarray, k_null: int, k_unknown: int,
             domain: tuple | None) -> np.ndarray: ...  # narrow_dtype(col.type)
def domain_codes(col: Column, first: np.ndarray, k_null: int, k_unknown: int,
                 domain: tuple) -> np.ndarray: ...  # int8, or int16 beyond 127 values
def dictionary_codes(col: Column, first: np.ndarray, k_null: int, k_unknown: int,
                     domain: tuple) -> np.ndarray: ...  # domain_codes of dictionary chunks
