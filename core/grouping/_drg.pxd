# The DRG kernel's contract: condition kinds, the compiled tables and the per-claim columns.
# Every code is an int id (index into codes.json diagnoses / procedures); no strings here.
from libc.stdint cimport int8_t, int32_t, int64_t, uint32_t, uint64_t

cdef enum:
    NULL_INT = -2147483648   # null integer input (age_days, birth_weight …)
    CODE_UNKNOWN = -1        # a code not in the valid list
    CODE_NULL = -2           # a null element inside a code list (ignored)

# Condition kinds (same order as compile.COND_KINDS).
cdef enum CondKind:
    C_PDX_IN = 0
    C_ANYDX_IN = 1
    C_PPROC_IN = 2
    C_ANYPROC_IN = 3
    C_PPROC_OR = 4
    C_NO_OR_PROC = 5         # no operating-room procedure among all (且无手术)
    C_SEX_EQ = 6
    C_AGE_EQ = 7
    C_AGE_DAYS_LT = 8
    C_AGE_DAYS_GE = 9
    C_WEIGHT_LT = 10
    C_WEIGHT_GE = 11
    C_TRAUMA_REGIONS_GE = 12 # two different trauma codes in two different body regions

# Status codes (same order as tables.STATUSES).
cdef enum Status:
    S_OK = 0
    S_INVALID_PDX = 1
    S_INVALID_SDX = 2
    S_INVALID_PROC = 3
    S_INVALID_SEX = 4
    S_INVALID_AGE = 5
    S_SEX_CONFLICT = 6
    S_NO_MDC = 7
    S_NO_ADRG = 8
    S_INVALID_WEIGHT = 9
    S_MISSING_AGE_DAYS = 10
    S_MISSING_WEIGHT = 11

# A condition's or rule's state: false, true, or undecided for want of a value (bits).
cdef enum:
    R_FALSE = 0
    R_TRUE = 1
    R_NEEDS_DAYS = 2         # reads age_days, which is null
    R_NEEDS_WEIGHT = 4       # reads birth_weight, which is null or 0

cdef struct DrgTablesC:
    const uint64_t* dx_bits      # [n_dx * dx_words] bit s set when dx is in dx set s
    int32_t dx_words             # uint64 words per diagnosis row
    const uint64_t* proc_bits    # [n_proc * proc_words] bit s set when proc is in proc set s
    int32_t proc_words           # uint64 words per procedure row
    int32_t or_bit               # proc set bit of the operating-room procedures (SS_VALID)
    int32_t male_bit             # dx set bit of the MDCM list, -1 if absent
    int32_t female_bit           # dx set bit of the MDCN list, -1 if absent
    const int32_t* dx_sev        # [n_dx * 2] (MCC, CC) exclusion table, -1 when not an MCC / CC
    const int32_t* dx_cce        # [n_dx] exclusion table of the dx as principal, -2 if none
    const uint32_t* dx_regions   # [n_dx] bitmask of MDCZ body regions
    const int32_t* adrg_drg      # [n_adrg * 3] DRG id for severity 0 / 1 / 2
    const int32_t* dx_program    # [n_dx] walk program of the dx as principal
    const int32_t* program_start # [n_program + 1] words of program p: [p] .. [p+1]
    const int32_t* program       # items [id << 2 | is_mdc << 1 | fast, ...] (compile._programs)
    const int32_t* strip_kind    # conditions of each rule without its pdx_in ones
    const int32_t* strip_arg
    const int32_t* strip_start   # [n_rule + 1]

cdef struct ClaimsC:
    int64_t n                    # claims
    const int32_t* pdx           # [n] principal dx id (CODE_UNKNOWN for null / invalid)
    const int64_t* sdx_start     # [n] first secondary of claim i in sdx
    const int64_t* sdx_end       # [n] one past its last
    const int32_t* sdx           # secondary dx ids (CODE_NULL elements are skipped)
    const int64_t* proc_start    # [n]
    const int64_t* proc_end      # [n]
    const int32_t* proc          # procedure ids, principal first
    const int32_t* sex           # [n] 1 male, 2 female, NULL_INT
    const int32_t* age           # [n] years, NULL_INT
    const int32_t* age_days      # [n] days, NULL_INT
    const int32_t* weight        # [n] birth weight g, NULL_INT

cdef struct ResultC:
    int8_t* status               # [n] Status
    int32_t* mdc                 # [n] index in the city MDC order (grouped: its MDC; else
                                 #     where it stopped, see reference.py), -1
    int32_t* adrg                # [n] ADRG id (grouped, or the undecided one), -1
    int32_t* drg                 # [n] DRG id, -1

cdef void group_claims(const DrgTablesC* t, const ClaimsC* c, ResultC* out) noexcept nogil
