/**
 * The ideal of a job-level run (`bench/scenarios/jobs.ts`): each job is one
 * submission and, once it has finished, one status poll that reads `done`.
 * A clairvoyant client that knows the limits and every job's duration sends
 * each request at the earliest moment the server's own windows accept it:
 *
 * - every submission is ready at `start`, in job order; job `j`'s one poll is
 *   ready `durations[j]` after its submission is accepted (when the server
 *   has finished it);
 * - at any moment a submission goes before a ready poll (the work is bound by
 *   capacity: submitting first keeps every window full and leaves the polls,
 *   which need no more capacity, for the end);
 * - the minute window counts both; the daily window counts submissions, and
 *   polls too when `pollsDaily`. Then a submission goes only while the day
 *   still has room for it, its own poll and the polls of every job submitted
 *   and not yet polled (a clairvoyant client never leaves a result for the
 *   next day by spending the day on submissions).
 *
 * The windows follow the fake server's rules exactly (the `WindowSim` of
 * `ideal.ts`: fixed, first-hit, sliding). Round trips are not counted. The
 * ideal makespan runs from `start` to the acceptance of the last poll.
 */
import { WindowSim, type IdealWindow } from './ideal.js';

export interface JobIdealInput {
  start: number;
  /** Each job's duration on the server (from its creation to `done`), ms, in submission order. */
  durations: readonly number[];
  minute: IdealWindow;
  daily?: IdealWindow | undefined;
  /** Whether the daily window counts polls too (it always counts submissions). */
  pollsDaily?: boolean;
}

export interface JobIdealResult {
  /** Acceptance time of each job's submission and of its poll. */
  submitted: number[];
  polled: number[];
  /** Acceptance time of the last poll. */
  end: number;
  makespanMs: number;
}

export function idealJobs(input: JobIdealInput): JobIdealResult {
  const { start, durations } = input;
  const n = durations.length;
  const minute = new WindowSim(input.minute);
  const daily = input.daily ? new WindowSim(input.daily) : undefined;
  const pollsDaily = input.pollsDaily === true;
  const dailyLimit = input.daily?.limit ?? Infinity;
  if (pollsDaily && dailyLimit < 2) throw new RangeError('a daily limit below 2 never fits a submission and its poll');
  const submitted: number[] = [];
  const polled = new Array<number>(n).fill(Number.NaN);
  /** Jobs submitted and not yet polled, with the time their poll is ready. */
  const pending: Array<{ job: number; ready: number }> = [];
  let done = 0;
  let t = start;
  let guard = 0;
  while (done < n) {
    if (++guard > 100 * n + 1_000_000) throw new Error('idealJobs did not converge');
    const minuteFree = minute.used(t) < input.minute.limit;
    const dayUsed = daily ? daily.used(t) : 0;
    const dayRoomForSubmit = !daily || dayUsed + 1 + (pollsDaily ? pending.length + 1 : 0) <= dailyLimit;
    const dayRoomForPoll = !pollsDaily || dayUsed < dailyLimit;
    if (minuteFree && submitted.length < n && dayRoomForSubmit) {
      const job = submitted.length;
      submitted.push(t);
      minute.hit(t);
      daily?.hit(t);
      pending.push({ job, ready: t + (durations[job] as number) });
      continue;
    }
    let first = -1;
    for (let i = 0; i < pending.length; i++) {
      if ((pending[i] as { ready: number }).ready <= t && (first < 0 || (pending[i] as { ready: number }).ready < (pending[first] as { ready: number }).ready)) first = i;
    }
    if (minuteFree && first >= 0 && dayRoomForPoll) {
      const p = pending.splice(first, 1)[0] as { job: number };
      polled[p.job] = t;
      minute.hit(t);
      if (pollsDaily) daily?.hit(t);
      done++;
      continue;
    }
    // Nothing can go now: move to the next moment something changes.
    let at = Infinity;
    if (!minuteFree) at = Math.min(at, minute.nextRelease(t));
    if (daily && (!dayRoomForSubmit || !dayRoomForPoll)) at = Math.min(at, daily.nextRelease(t));
    for (const p of pending) if (p.ready > t) at = Math.min(at, p.ready);
    if (!Number.isFinite(at)) throw new Error(`idealJobs is stuck at t=${t} (${done} of ${n} polled)`);
    t = at;
  }
  const end = Math.max(start, ...polled);
  return { submitted, polled, end, makespanMs: end - start };
}
