"""The words a prediction answers with, and what each means to a user: the one place they are defined.

A plain module of constants and one dict so it can move (to opcompat/vocab.py) without dragging code along.
"""

NATIVE = "native"
NATIVE_MACOS = "native_macos"
COMPOSITE_MPS = "composite_mps"
COMPOSITE = "composite"
FALLBACK = "fallback"
FORCED_CPU = "forced_cpu"
ERROR = "error"
NOT_IN_RELEASE = "not_in_release"
UNSUPPORTED_DTYPE = "unsupported_dtype"
UNKNOWN = "unknown"

DESCRIPTIONS = {
    NATIVE: "runs on MPS (an MPS kernel in this release)",
    NATIVE_MACOS: "runs on MPS on macOS >= min_macos; older macOS runs it on the CPU or refuses it",
    COMPOSITE_MPS: "no kernel of its own, but every op it decomposes into runs on MPS",
    COMPOSITE: "decomposes into other ops; runs on MPS if what it calls does (no trace to say which)",
    FALLBACK: "falls back to the CPU, only with PYTORCH_ENABLE_MPS_FALLBACK=1 (else NotImplementedError)",
    FORCED_CPU: "always runs on the CPU: the MPS backend itself sends it there, no environment variable needed",
    ERROR: "fails on MPS with an error that no environment variable fixes",
    NOT_IN_RELEASE: "the op does not exist in this torch release",
    UNSUPPORTED_DTYPE: "the op exists but MPS refuses this dtype",
    UNKNOWN: "no answer: the release could not be read (e.g. its wheel could not be downloaded)",
}
# Op-level statuses, best first: a composite takes the worst of what it calls.
ORDER = (NATIVE, NATIVE_MACOS, COMPOSITE_MPS, COMPOSITE, FORCED_CPU, FALLBACK, ERROR, UNKNOWN, NOT_IN_RELEASE)
RUNS_ON_MPS = (NATIVE, NATIVE_MACOS, COMPOSITE_MPS)
# The result files (matrix/results.py) still speak the first vocabulary; this maps onto it.
RESULT_FILE_WORDS = {NATIVE_MACOS: NATIVE, COMPOSITE_MPS: NATIVE, FORCED_CPU: FALLBACK, ERROR: UNKNOWN,
                     NOT_IN_RELEASE: "unknown_op"}
