/**
 * Exit codes of `modelbeam-batch`. They are part of the CLI's interface:
 * scripts branch on them, so a code never changes meaning.
 *
 * | code | name | meaning |
 * |---|---|---|
 * | 0 | `OK` | The input is finished: every item has a terminal record, and all are `done`. |
 * | 1 | `ITEMS_FAILED` | The input is finished, and some items `failed` or were `invalid` (see the results and errors files). Running again changes nothing. |
 * | 2 | `USAGE` | Bad usage: an unknown option or bad value, no API key, an unreadable input, an unwritable results file, a results file in use, `--out` that is the input or not a results file. Nothing was sent. Also a base URL that is not the API (a 404 before any request of the run succeeded): the run stopped with nothing marked finished; fix `--base-url` and run the same command again. |
 * | 3 | `STOPPED` | Stopped before the end, resumable: the daily quota ran out, a signal (Ctrl-C, SIGTERM; twice = at once), the API looked down, the balance ran out, the spend cap (`--max-spend`) was reached, or items were left pending. Run the same command again to resume. |
 * | 4 | `AUTH_FAILED` | The API key was refused (HTTP 401/403). Dispatch stopped at once and nothing was retried; fix the key and run the same command again to resume. |
 * | 70 | `INTERNAL` | An unexpected error (a bug). What was written to the results file stands; running again resumes. |
 */
export const EXIT = {
  OK: 0,
  ITEMS_FAILED: 1,
  USAGE: 2,
  STOPPED: 3,
  AUTH_FAILED: 4,
  INTERNAL: 70,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** One line per code, for `--help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0   every item done
  1   finished, but some items failed or were invalid (see the results and errors files)
  2   bad usage: bad option, no API key, unreadable input, --out not a results file (nothing was sent);
      or the base URL is not the API (404 before any success): nothing marked finished, fix --base-url and rerun
  3   stopped early, resumable (daily quota, Ctrl-C/SIGTERM, API unavailable, balance, spend cap): run the same command again
  4   the API key was refused (401): fix it, then run the same command again to resume
  70  internal error (a bug); the results file is consistent, run again to resume`;
