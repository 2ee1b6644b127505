# cython: language_level=3
"""FNV-1a 64-bit over a byte run: the one string hash of yibao, inline, nogil.

core/_hash.pyx hashes partition keys with it (the bucket hash is part of the output contract:
it fixes the row order of results, core/partition.py); core/_ids.pyx adds an avalanche on top
for its open-addressing table. Ingestion's id tables hash with core/_idhash.pxd instead
(8 bytes at a time; free to change, as no output depends on it). No .pyx: cimporting this file pulls the inline function in."""
from libc.stdint cimport int64_t, uint8_t, uint64_t


cdef inline uint64_t fnv1a_bytes(const uint8_t* p, int64_t n) noexcept nogil:
    cdef uint64_t h = 14695981039346656037ULL  # FNV-1a 64 offset basis
    cdef int64_t k
    for k in range(n):
        h = (h ^ p[k]) * 1099511628211ULL  # FNV-1a 64 prime
    return h
