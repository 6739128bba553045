/** mpx's exit codes (documented in the README): 2 for bad input as ESLint does, 130 after SIGINT as shells do. */
export const EXIT_OK = 0;
/** A result the user asked to gate on: failed runs, a `mpx diff --fail-on` threshold exceeded. */
export const EXIT_FAILED = 1;
/** Bad input or usage, named with file:line:col and what to do. */
export const EXIT_USAGE = 2;
/**
 * `mpx run --shard` only: no run failed, but at least one is `oom` (recorded: an answer, not a failure). A scheduler's
 * task exit code then tells success (0), OOM (3) and failure (1) apart.
 */
export const EXIT_SHARD_OOM = 3;
/** A bug in mpx (the message says so). */
export const EXIT_BUG = 70;
export const EXIT_INTERRUPTED = 130;
