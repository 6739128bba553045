/** mpx's exit codes (documented in the README): 2 for bad input as ESLint does, 130 after SIGINT as shells do. */
export const EXIT_OK = 0;
/** A result the user asked to gate on: failed runs, a `mpx diff --fail-on` threshold exceeded. */
export const EXIT_FAILED = 1;
/** Bad input or usage, named with file:line:col and what to do. */
export const EXIT_USAGE = 2;
/** A bug in mpx (the message says so). */
export const EXIT_BUG = 70;
export const EXIT_INTERRUPTED = 130;
