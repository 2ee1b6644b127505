# The settlement kernel's contract: what lower.py hands the nogil loop in _kernel.pyx.
# Every pointer is borrowed from a numpy array that lower.Program keeps alive for the call.
from libc.stdint cimport int64_t, int32_t, uint8_t

cdef enum:
    MAX_LAYERS = 32        # layers in one plan
    MAX_CAPS = 8           # caps in one layer
    MAX_BANDS = 16         # bands in one layer
    MAX_STATES = 256       # accumulators in one plan
    MAX_KEYS = 8           # accumulator key kinds (person, family, ...) in one plan

# The layer kinds are ``cpdef``: Python sees them as IntEnums (_kernel.DeductibleKind …),
# which core/lower.py uses and _kernel.pyi types, so the kinds are defined here only.
cpdef enum DeductibleKind:
    DED_NONE = 0
    DED_PER_CLAIM = 1
    DED_PER_YEAR = 2

cpdef enum RatioKind:
    RATIO_FULL = 0         # pays all of base - deductible
    RATIO_PER_CLAIM = 1    # ratio[i] in millionths
    RATIO_BANDS = 2        # bands over the key's cumulative yearly amount

# Accumulators are laid out row-major per key kind: row kid of kind k is
# blocks[k][kid * widths[k] : (kid + 1) * widths[k]], slot 0 the policy year it belongs to (0
# in a fresh row: no year yet, the other slots already as a restart leaves them) and the other
# slots that key's deductibles, bands, caps and kept burden. Claims arrive in date order, i.e.
# jumping between persons; one row per person keeps a claim's state in one cache line instead
# of one line per accumulator array (lower.Program pads widths to 1, 2, 4 or 8k slots and
# aligns blocks to 64 bytes), and the loop prefetches the rows of the claim AHEAD places later,
# so those random reads overlap instead of stalling every claim.

# Every per-row input below comes with an index mask: -1 when it is an array over the rows
# (read x[i & -1] = x[i]), 0 when the plan's expression is a constant held in one element
# (x[i & 0] = x[0]), so a 300,000-yuan cap is one number, not an array of n copies.

cdef struct LayerSpec:
    const uint8_t* applies         # 1 where the layer applies to row i
    int64_t m_applies              # index mask of applies (see above)
    const int64_t* base_claim      # claim part of the base (fen), before paid() terms
    int64_t m_base
    int n_paid                     # number of paid() terms in the base
    int paid_layer[MAX_LAYERS]     # earlier layer index of each term
    int paid_sign[MAX_LAYERS]      # +1 or -1
    int ded_kind                   # DeductibleKind
    const int64_t* ded_amount      # D for row i (fen)
    int64_t m_ded
    const uint8_t* ded_continuing  # NULL, or 1 where row i is a transfer (连续计算起付线)
    int64_t m_continuing
    int ded_state                  # frame slot: consumed this year (DED_PER_YEAR)
    int last_ded_state             # frame slot: the deductible of the key's previous
                                   # claim (连续计算起付线), or -1
    int ratio_kind                 # RatioKind
    const int64_t* ratio           # ratio for row i in millionths (RATIO_PER_CLAIM)
    int64_t m_ratio
    int n_bands                    # over every band set (a `when` set: 困难群众 rates)
    int64_t band_lo[MAX_BANDS]     # fen, inclusive
    int64_t band_hi[MAX_BANDS]     # fen, exclusive; -1 = unbounded
    int64_t band_rate[MAX_BANDS]   # millionths
    int band_first[MAX_BANDS + 1]  # set s is bands band_first[s] .. band_first[s+1]-1
    const int64_t* band_set        # NULL (set 0 for every row), or the set paying row i
    int64_t m_band_set
    int band_state                 # frame slot: cumulative e this year (RATIO_BANDS)
    int n_caps
    const int64_t* cap_amount[MAX_CAPS]  # cap for row i (fen)
    int64_t m_cap[MAX_CAPS]
    int cap_state[MAX_CAPS]        # frame slot: paid so far under a yearly cap (shared
                                   # caps share it); -1 for a per-claim cap
    int has_limit                  # self-pay limit (兜底) instead of a ratio
    const int64_t* limit_amount    # L for row i (fen)
    int64_t m_limit
    int limit_state                # frame slot: burden kept this year
    int64_t* out_pay               # payment of row i (fen)
    int64_t* out_ded               # deductible consumed by row i (fen); NULL exactly when
                                   # ded_kind is DED_NONE

# A claim settles against its frame ``acc`` (sum(widths) slots): its keys' rows copied side by
# side, each state's place given as a slot of the frame (the LayerSpec fields "frame slot"),
# written back to the rows once the claim is through. Arithmetic is checked (money.py,
# core/_checked.pxd): a claim whose amounts would leave int64 is rolled back by not writing
# its frame back, its outputs set to 0 and overflow[i] to the layer index + 1; the loop goes
# on with the next.
cdef void settle_rows(const int64_t* order, int64_t n_order, int n_layers, LayerSpec* layers,
                      int n_keys, const int64_t** key_ids, const int32_t* year,
                      int64_t** blocks, const int64_t* widths, int64_t* acc,
                      int32_t* overflow) noexcept nogil
