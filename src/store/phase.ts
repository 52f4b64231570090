/**
 * Phase learning: when will the minute window next give its budget back?
 *
 * The core budget (`budget-state.ts`) knows what the server's numbers allow
 * now; this half predicts the future from when those numbers jumped back up,
 * and says two things only:
 *
 * - the predicted reset (`resetDue`): from then on the core lets one request
 *   read the new numbers, as the fixed window has surely reset;
 * - the units to hold back (`heldUnits`, `holdUntil`): one for a late probe
 *   that reads a limit raised during the window, and one for a scout that
 *   narrows the bracket of the next reset;
 *
 * plus whether answers still counted may be kept across a jump (`keepsAnswers`).
 *
 * It learns from fresh answers only (`onJump`, `onNoJump`), from refusals
 * (`onRefused`) and from the reads the core lets through (`onPredictedReset`).
 * Its fields live in the window's state record (`WindowPhase`), beside the
 * core's, so that the whole state stays one plain record (see `newWindow` in
 * budget-state.ts for their starting values: all 0).
 */

/** The phase learner's part of a window's state. */
export interface WindowPhase {
  lastNoJumpSentAt: number;
  /** 0 unknown, 1 fixed (a reset was seen that no sliding window could explain). */
  kind: number;
  /** Bracket of the next reset; 0 when unknown. */
  nextLo: number;
  nextHi: number;
  /** One request is held back until this time to bisect the bracket; 0 for none. */
  scoutAt: number;
  /** 1 once the predicted reset was applied for the current bracket. */
  raised: number;
  /** 1 once the first-window probe was planned. */
  probed: number;
  /**
   * Answers kept across a jump (see `#forget` in budget-state.ts): 0 none
   * kept yet, 1 some were (each raises the budget a window after it came),
   * 2 never again: a minute 429 came after that (the window is fixed and
   * shared with a client we do not see, or the limit was cut), so a jump
   * drops every answer, as a reset would.
   */
  slide: number;
  /**
   * 1 once a reset was seen before a window started by our own read could have
   * ended: the fixed windows are on a grid (they do not start at the first hit
   * after the last one ended, as Laravel's do), so a reset predicted from the
   * last one keeps its bracket instead of following the read.
   */
  grid: number;
  /**
   * Were the window started by the read after the predicted reset (sent with
   * nothing in flight), the reset after it would not come before this; 0 when
   * unknown. `readHitLo` is the same for a read not yet answered.
   */
  hitLo: number;
  readHitLo: number;
  /**
   * 1 once a request was refused inside a window whose reset was predicted:
   * someone else spends this budget too (or the limit was cut), so a unit
   * held back for a late probe or a scout may be gone when it goes. Units
   * are no longer held back.
   */
  holdOff: number;
}

/** What the learner reads of the core's part of the window. */
interface WindowCore {
  windowMs: number;
  limit: number;
}

type Window = WindowPhase & WindowCore;

/**
 * Scouting stops once the bracket is narrower than this share of the window.
 * A scout that lands after the reset wastes the unit it held in the old
 * window, so scouts only run while the phase is still poorly known.
 */
const SCOUT_TOLERANCE = 1 / 20;
/** Where in the bracket the scout goes: early, so that it usually lands before the reset. */
const SCOUT_POSITION = 1 / 4;
/**
 * With the phase known, one unit of each window (the late probe) goes this
 * share of a window before the earliest next reset: late enough to see a limit
 * raised during the window, early enough that what the raise allows can still
 * be spent in it. While the bracket is wide, a scout's unit is held as well.
 */
const LATE_PROBE = 1 / 8;

/** The limit was first learned: hold one unit back to probe the middle of the first window for a reset. */
export function onLimitLearned(w: Window, firstSentAt: number): void {
  if (w.probed !== 0) return;
  w.probed = 1;
  if (w.limit < 2) return;
  w.scoutAt = firstSentAt + w.windowMs / 2;
}

/** What the core knows when a fresh answer shows the count came back up. */
export interface Jump {
  /** The answer's remaining count, and when it arrived. */
  remaining: number;
  now: number;
  /** When its request was sent, and the request behind the snapshot before it. */
  sentAt: number;
  prevSnapSentAt: number;
  /** Our answers a sliding window of the last `windowMs` would still count (read before the core forgets them). */
  recentAnswers(): number;
}

/** A fresh answer showed the window reset (or slid) since the previous snapshot. */
export function onJump(w: Window, j: Jump): void {
  if (w.kind === 0) {
    // Could a sliding window explain this? Only if it forgot none of our recent requests.
    if (j.remaining > w.limit - 1 - j.recentAnswers()) w.kind = 1;
  }
  if (w.kind !== 1) return;
  if (w.hitLo > 0 && j.now < w.hitLo) w.grid = 1;
  w.hitLo = w.raised === 1 ? w.readHitLo : 0;
  w.readHitLo = 0;
  const seen = Math.max(j.prevSnapSentAt, w.lastNoJumpSentAt);
  let lo = seen;
  if (w.nextLo > 0 && w.nextLo > lo && w.nextLo < j.now) lo = w.nextLo;
  // On a grid, the bracket predicted for this reset (an answer came since the reset before it, and
  // not a window later) still holds where it agrees with this one: keep its upper end, or it would
  // creep by a margin and a round trip each window (the read goes after it).
  const predicted = seen >= w.nextHi - w.windowMs && j.now < w.nextLo + w.windowMs;
  const hi = w.grid === 1 && predicted && w.nextHi > lo && w.nextHi < j.now ? w.nextHi : j.now;
  w.nextLo = lo + w.windowMs;
  w.nextHi = hi + w.windowMs;
  w.raised = 0;
  w.lastNoJumpSentAt = 0;
  w.scoutAt = nextHold(w, j.now);
}

/**
 * A fresh answer said the window resets between `lo` and `hi`: the server's
 * word. The window is fixed (or starts at a first hit, which predicts the
 * same), and the bracket of the next reset is narrowed to what was said, or
 * set from it where the two disagree. A narrow enough bracket needs no scout.
 */
export function onStatedReset(w: Window, lo: number, hi: number, now: number): void {
  if (w.kind === 1 && w.raised === 0 && w.nextHi > 0 && lo <= w.nextHi && hi >= w.nextLo) {
    w.nextLo = Math.max(w.nextLo, lo);
    w.nextHi = Math.min(w.nextHi, hi);
  } else {
    w.kind = 1;
    w.nextLo = lo;
    w.nextHi = hi;
    w.raised = 0;
  }
  w.probed = 1;
  w.scoutAt = nextHold(w, now);
}

/** A fresh answer was counted in the same window as the previous one. */
export function onNoJump(w: Window, sentAt: number): void {
  if (sentAt > w.lastNoJumpSentAt) w.lastNoJumpSentAt = sentAt;
  if (w.raised === 1) {
    // We predicted a reset that the server has not made: stop trusting the phase.
    forgetPhase(w);
    return;
  }
  if (w.nextHi > 0 && sentAt > w.nextLo && sentAt < w.nextHi) w.nextLo = sentAt;
}

/**
 * Forgets the phase: a jump that came with a limit change and freed more
 * than the raise explains (the window also reset or slid, and where cannot
 * be told). Time alone raises the budget until the phase is learnt again.
 */
export function forgetPhase(w: Window): void {
  w.kind = 0;
  w.nextLo = 0;
  w.nextHi = 0;
  w.scoutAt = 0;
  w.raised = 0;
  w.grid = 0;
}

/** A minute 429 at `now` (with the server's `Retry-After`, if any). */
export function onRefused(w: Window, now: number, retryAfterMs: number | undefined): boolean {
  // Refused after answers were kept across a jump: keep none from now on (the caller drops those kept).
  const dropKept = w.slide === 1;
  if (dropKept) w.slide = 2;
  // Refused before the predicted reset: the budget is shared (or was cut); hold no more units back.
  if (w.kind === 1 && w.nextHi > 0 && now < w.nextLo) w.holdOff = 1;
  if (retryAfterMs !== undefined && w.kind === 1 && now + retryAfterMs < w.nextHi) {
    w.nextHi = now + retryAfterMs;
    // The server's word wins over a lower side it contradicts: never an inverted bracket.
    if (w.nextLo > w.nextHi) w.nextLo = w.nextHi;
  }
  return dropKept;
}

/** Whether answers still counted may be kept across a jump (no minute 429 came since some were). */
export function keepsAnswers(w: Window): boolean {
  return w.slide !== 2;
}

/** Answers were kept across a jump. */
export function onKept(w: Window): void {
  if (w.slide === 0) w.slide = 1;
}

/** The fixed window has surely reset by `now` (its predicted reset has not been applied yet). */
export function resetDue(w: Window, now: number, marginMs: number): boolean {
  return w.kind === 1 && w.raised === 0 && w.nextHi > 0 && now >= w.nextHi + marginMs;
}

/** The core applied the predicted reset at `now` and lets one request read; `idle`: nothing is in flight. */
export function onPredictedReset(w: Window, now: number, idle: boolean): void {
  w.raised = 1;
  w.readHitLo = idle ? now + w.windowMs : 0;
}

/** The next time something planned here may let a request go (a predicted reset, a hold ending); Infinity for none. */
export function nextEvent(w: Window, now: number, marginMs: number): number {
  let t = Infinity;
  if (w.kind === 1 && w.raised === 0 && w.nextHi > 0) t = w.nextHi + marginMs;
  // A scout time already passed frees nothing more: it would make callers retry at once, forever.
  if (w.scoutAt > now) t = Math.min(t, w.scoutAt);
  return t;
}

/** A request was granted at `now`: a hold whose time has come is spent, and the next is planned. */
export function onGrant(w: Window, now: number): void {
  if (w.scoutAt > 0 && now >= w.scoutAt) w.scoutAt = nextHold(w, now);
}

/**
 * When the next unit held back goes, once the phase is known (0: none). First
 * the late probe, which reads a limit raised during the window while what
 * it allows can still be spent there; then, while the bracket of the next
 * reset is wide, the scout that narrows it.
 */
function nextHold(w: Window, now: number): number {
  if (w.kind !== 1 || w.nextHi <= 0 || w.holdOff === 1) return 0;
  const late = w.nextLo - w.windowMs * LATE_PROBE;
  if (late > now) return late;
  const scout = scoutTime(w);
  return scout > now ? scout : 0;
}

/** When the scout goes while the bracket of the next reset is wide; 0 when it is narrow enough. */
function scoutTime(w: Window): number {
  const width = w.nextHi - w.nextLo;
  if (w.kind !== 1 || w.nextHi <= 0 || w.holdOff === 1 || width <= w.windowMs * SCOUT_TOLERANCE) return 0;
  return w.nextLo + width * SCOUT_POSITION;
}

/**
 * Units held back at `now`: one for the hold planned at `scoutAt`, and one
 * for a scout still to follow it (after the late probe, while the bracket is
 * wide), so that the late probe does not spend the scout's unit.
 */
export function heldUnits(w: Window, now: number): number {
  const scout = scoutTime(w);
  const follows = w.scoutAt > 0 && scout > now && w.scoutAt !== scout ? 1 : 0;
  return (w.scoutAt > now ? 1 : 0) + follows;
}

/** When units held back are free again (0 for none pending). */
export function holdUntil(w: Window, now: number): number {
  return w.scoutAt > now ? w.scoutAt : scoutTime(w);
}

/** A read goes through: any hold planned is dropped (it would eat the read's one unit). */
export function onRead(w: Window): void {
  w.scoutAt = 0;
}
