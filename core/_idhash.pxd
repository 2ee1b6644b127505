# cython: language_level=3
"""The hash of the id tables (core/_ingest.pyx: claim ids, key values), inline, nogil.

Not the bucket hash: that one (FNV-1a, core/_fnv.pxd) is part of the output contract and never
changes; this one only places values in an open-addressing table whose entries are compared
byte for byte, so it may change freely (results never depend on it). It reads a value 8 bytes
at a time (FNV-1a multiplies once per byte, one after the other: for 2M person ids of 7 bytes
that chain was a large part of the key pass, issue 14, m17), then mixes the low bits, which
pick the slot, with the avalanche of MurmurHash3's finaliser (fmix64)."""
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy


cdef inline uint64_t fmix64(uint64_t h) noexcept nogil:
    h ^= h >> 33
    h *= 0xff51afd7ed558ccdULL
    h ^= h >> 33
    h *= 0xc4ceb9fe1a85ec53ULL
    h ^= h >> 33
    return h


cdef inline uint64_t load64(const uint8_t* p) noexcept nogil:
    cdef uint64_t w
    memcpy(&w, p, 8)  # a constant size: one unaligned load, no call
    return w


cdef inline uint64_t load32(const uint8_t* p) noexcept nogil:
    cdef uint32_t w
    memcpy(&w, p, 4)
    return w


cdef inline uint64_t id_hash(const uint8_t* p, int64_t n, uint64_t seed) noexcept nogil:
    """64-bit hash of the ``n`` bytes at ``p``; ``seed`` separates kinds of values (a key's
    own value from its fallback's). Words of 8 bytes are folded in with one multiply each;
    the bytes past the last whole word are read as one word ending at the value's end
    (overlapping the one before: only the value's own bytes are ever read), a value of 4 to
    7 bytes as two 4-byte words and a shorter one byte by byte, as wyhash does (a copy of a
    variable length is a call per value). The length is mixed in first, so values that read
    alike but differ in length hash apart."""
    cdef uint64_t h = seed ^ (<uint64_t>n * 0x9e3779b97f4a7c15ULL), w
    cdef const uint8_t* end = p + n
    if n > 8:
        while end - p > 8:
            h = (h ^ load64(p)) * 0x87c37b91114253d5ULL
            h = (h << 31) | (h >> 33)
            p += 8
        w = load64(end - 8)
    elif n == 8:
        w = load64(p)
    elif n >= 4:
        w = (load32(p) << 32) | load32(end - 4)
    elif n > 0:
        w = (<uint64_t>p[0] << 16) | (<uint64_t>p[n >> 1] << 8) | p[n - 1]
    else:
        w = 0
    h = (h ^ w) * 0x87c37b91114253d5ULL
    return fmix64(h)
