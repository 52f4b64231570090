/**
 * The budget state machine: what the server's numbers allow right now.
 *
 * This is the single source of the budget rules. `MemoryStore` runs it in
 * process; `RedisStore` runs the same code on a state it keeps in Redis and
 * writes back with compare-and-set (see `shared-budget.ts`).
 *
 * The model, per window (minute and daily):
 * - `rem` is the remaining count of the newest applicable server snapshot;
 *   `unc` counts requests that may not be counted in `rem` yet (in flight, or
 *   answered without a usable snapshot). `rem - unc` is a lower bound of what
 *   the server will still accept, so dispatching up to it never draws a 429.
 * - Freshness: a response is *fresh* when its request was sent after the
 *   current snapshot was applied; the server processed it later, so its numbers
 *   win, up or down. Otherwise it is *ambiguous*: it may lower the budget (the
 *   server processed it later in the same window) but never raise it.
 * - Time only ever raises the budget: a request answered at `t` no longer
 *   counts in any fixed or sliding window after `t + W` (the expiry log), and
 *   once the window is known to be fixed, a predicted reset restores the limit.
 * - The phase of a fixed window is learned from `Remaining` jumping back up on
 *   a fresh response, never from 429s. A held-back "scout" request bisects the
 *   bracket of the next reset, so the bracket tightens window after window,
 *   and a held-back late probe reads a limit raised during the window.
 */
import { refusedWindow } from '../headers/refusal.js';
import type { WindowSnapshot } from '../headers/types.js';
import { AnswerLog } from './answer-log.js';
import * as phase from './phase.js';
import type { WindowPhase } from './phase.js';
import { absorb, applyUntrusted, countedBelow, hide, notCounted, letOneRead, newWindow, setSnapshot, windowView } from './window.js';
import type { BudgetConfig, BudgetView, Outcome, ReserveResult, SettleResult, Ticket } from './types.js';

/**
 * State of one window: the core's fields below, and the phase learner's
 * (`WindowPhase`, in phase.ts). Plain numbers only, one flat record, so that
 * the whole state is plain JSON.
 */
export interface WindowState extends WindowPhase {
  windowMs: number;
  /** -1 while unknown. */
  limit: number;
  /** -1 while unknown. */
  rem: number;
  /** Server value behind `rem`; -1 once time has raised `rem` (then a drop in `Remaining` proves nothing). */
  srvRem: number;
  /** The newest server value, kept across raises to recognise the next jump. -1 while none. */
  lastSrvRem: number;
  unc: number;
  ver: number;
  epoch: number;
  snapSentAt: number;
  /** When the snapshot behind `rem` arrived; everything it counted has expired by `snapAt + W`. */
  snapAt: number;
  /**
   * 1 while `rem` is not a count but leave for one request to read the new
   * numbers (after a predicted reset or a 429 gate): a header-less answer to
   * it is then not absorbed, so that another request may read them.
   */
  probe: number;
  /**
   * Counted answers without a count of this window, to requests sent after the
   * current snapshot was applied: the server counted each after that snapshot,
   * so a fresh `Remaining` sent after them must be lower by as many, or the
   * window freed something. `hidDone` is `done` after the newest of them.
   */
  hidN: number;
  hidDone: number;
  /** recvAt of the newest answered request logged in this window; 0 for none. */
  lastRecv: number;
  /**
   * Probes answered without a count since the last read began, and when the
   * newest came back (0 for none). Each stays in `unc` (the server counted it
   * in the window the probe reads, but how much is left there is unknown)
   * until it has left that window; once `limit` of them are in, that window
   * is spent and no more probes go.
   */
  phantomN: number;
  phantomAt: number;
  /**
   * When the newest answer saying `Remaining: 0` came, since time last raised
   * the budget (0 for none). Until what it counted has left the window, the
   * refresh request (nothing in flight, `unc` high) does not go: answers that
   * come back out of order can leave `unc` high after a fresh count that the
   * server's last word, arrived earlier, had already taken to 0.
   */
  zeroAt: number;
}

/** State shared by both windows. */
export interface BudgetStateData {
  minute: WindowState;
  daily: WindowState;
  sent: number;
  done: number;
  /** 1 once any rate-limit header has been seen. */
  headers: number;
  /**
   * 1 once a request came back counted (status below 500, not 429): the proof,
   * absent headers, that the server sends none. Give-backs, network errors and
   * gateway errors prove nothing.
   */
  answered: number;
  gateUntil: number;
  /** 1 while the gate is closed: on reopening one request is let through. */
  gated: number;
  parkUntil: number;
  /** 1 while the daily window is exhausted. */
  parked: number;
  /** Predicted next daily reset, 0 when unknown. */
  nextDailyReset: number;
  /** 1 once the probe that learns the daily reset has been sent. */
  dailyProbe: number;
  /**
   * 1 when `nextDailyReset` is the server's word (a daily 429's `Retry-After`,
   * a stated reset, or one of those carried forward a day at a time); 0 when
   * it is a guess. The queue parks on the server's word only: on a guess it
   * sends the one probe whose refusal says when the day resets.
   */
  dailyResetKnown: number;
  /**
   * What requests said not to count against the daily window have shown:
   * 0 nothing yet, 1 one was answered while the day was spent, or left the
   * server's daily count unchanged (proven),
   * 2 one was refused by the daily window (revoked until the day resets:
   * they are held like the rest), 3 one's answer showed a daily count lower
   * than the requests said to count there can explain (they count there all
   * the same; for good: a server's rule, not a day's).
   */
  minuteOnly: number;
  /** Requests sent to test that word (while the day was spent, unproven), not answered yet. */
  minuteOnlyTests: number;
}

/** What `settle` may trust of an answer (shared stores; the memory store trusts everything). */
export interface SettleTrust {
  /** Count the answer in `done` (false: its lease was already reclaimed as expired). */
  countDone: boolean;
  /**
   * False when the answer's lease was unknown or its ticket came from an
   * earlier generation of the state: its snapshot may then lower limits and
   * remaining counts, never raise them or lower `uncounted`, and it is not
   * logged; a 429 still closes the gate or parks.
   */
  trusted: boolean;
}

const TRUSTED: SettleTrust = { countDone: true, trusted: true };

/** How coarse a stated reset is: whole seconds. */
const RESET_GRAIN_MS = 1000;

/** A real day: its reset is predicted at midnight UTC. Compressed days (tests) have no calendar. */
const DAY_MS = 86_400_000;

/** Milliseconds from `now` (epoch ms) to the next midnight UTC (a whole day at midnight itself). */
function untilMidnightUtc(now: number): number {
  return DAY_MS - (((now % DAY_MS) + DAY_MS) % DAY_MS);
}

/** The serialisable state: what `BudgetState.toJSON` gives and `BudgetState.restore` takes. */
export interface BudgetStateJSON {
  data: BudgetStateData;
  log: [number, number][];
}

export class BudgetState {
  readonly data: BudgetStateData;
  readonly #config: BudgetConfig;
  readonly #log: AnswerLog;

  /** A state saved with `toJSON()` (the objects are taken over, not copied). */
  static restore(config: BudgetConfig, saved: BudgetStateJSON): BudgetState {
    return new BudgetState(config, saved);
  }

  constructor(config: BudgetConfig, saved?: BudgetStateJSON) {
    this.#config = config;
    this.#log = saved ? AnswerLog.from(saved.log) : new AnswerLog();
    this.data = saved?.data ?? {
      minute: newWindow(config.minuteMs, config.seeds.minute),
      daily: newWindow(config.dayMs, config.seeds.daily),
      sent: 0,
      done: 0,
      headers: 0,
      answered: 0,
      gateUntil: 0,
      gated: 0,
      parkUntil: 0,
      parked: 0,
      nextDailyReset: 0,
      dailyProbe: 0,
      dailyResetKnown: 0,
      minuteOnly: 0,
      minuteOnlyTests: 0,
    };
    // A state saved by a version without `zeroAt` (a shared Redis document during an upgrade): none seen.
    this.data.minute.zeroAt ??= 0;
    this.data.daily.zeroAt ??= 0;
  }

  /** The whole state, as plain data (`restore` takes it back). */
  toJSON(): BudgetStateJSON {
    return { data: structuredClone(this.data), log: this.#log.toJSON() };
  }

  /**
   * Requests still in flight that a re-created state does not know (it was
   * lost: a flush, a restart without persistence): they count as sent and
   * uncounted in both windows.
   */
  adopt(n: number): void {
    const s = this.data;
    s.sent += n;
    s.minute.unc += n;
    s.daily.unc += n;
  }

  /**
   * What a process sent on its own while the shared state was out of reach
   * (`onUnavailable: 'local-share'`): `n` requests sent and answered whose
   * counts this state never saw (a fresh snapshot corrects `uncounted`
   * later), and the gate or park that process saw (store times; 0 for none).
   */
  absorbOffline(n: number, gateUntil: number, parkUntil: number, now: number): void {
    const s = this.data;
    if (n > 0) {
      s.sent += n;
      s.done += n;
      s.minute.unc += n;
      s.daily.unc += n;
    }
    if (gateUntil > now && gateUntil > s.gateUntil) {
      s.gateUntil = gateUntil;
      s.gated = 1;
    }
    if (parkUntil > now && (s.parked === 0 || (s.parkUntil > 0 && parkUntil > s.parkUntil))) {
      s.parked = 1;
      s.parkUntil = parkUntil;
    }
  }

  /**
   * Grants up to `want` requests now; `backlog` tasks wait beyond those.
   * `countsDaily: false`: requests the daily window does not count (its
   * budget and its park do not hold them; their tickets say `minuteOnly`).
   * `keepDaily`: daily units these requests leave for others (they wait while
   * sending them would leave fewer; no park). It holds for the day the
   * numbers are of: once that day has surely ended (its predicted reset, or a
   * day after its last word) one may go and read the new one.
   */
  reserve(want: number, now: number, backlog = Infinity, countsDailyAsked = true, keepDailyAsked = 0): ReserveResult {
    const s = this.data;
    // Said not to count daily, but one such was refused by the daily window (until the day resets) or shown
    // counted there by the server's numbers (for good): they count like the rest.
    const countsDaily = countsDailyAsked || s.minuteOnly >= 2;
    /** That word is tested first: while the day is spent and nothing proved it, one goes alone. */
    let test = false;
    const result: ReserveResult = {
      now,
      granted: 0,
      ticket: this.#ticket(now, countsDaily),
      leasePrefix: '',
      retryAt: undefined,
      blockedBy: undefined,
      parkedUntil: undefined,
      dailyUnknownReset: false,
    };

    if (s.gateUntil > now) {
      result.blockedBy = 'gate';
      result.retryAt = s.gateUntil;
      return result;
    }
    if (s.gated === 1) this.#reopenGate();

    if (s.parked === 1) {
      if (s.parkUntil <= now) {
        if (s.parkUntil > 0) this.#unpark(now);
      } else if (countsDaily) {
        result.blockedBy = 'park';
        result.retryAt = s.parkUntil;
        result.parkedUntil = s.parkUntil;
        return result;
      }
    }

    this.#tick(now);
    // Versions may have moved just above (gate reopened, park lifted, predicted
    // reset): the request sent now is the one that reads the new numbers, so
    // its ticket must carry them, or its answer would count as stale.
    result.ticket = this.#ticket(now, countsDaily);

    let avail = Infinity;
    if (!countsDaily && s.minuteOnly === 0 && this.#daySpent()) {
      if (s.minuteOnlyTests > 0) {
        avail = 0;
        result.blockedBy = 'daily';
        return result;
      }
      avail = 1;
      test = true;
    }
    /** The daily probe goes with this grant (spent only if something is granted). */
    let probe = false;
    let retryAt: number | undefined;
    let blockedBy: ReserveResult['blockedBy'];

    if (s.headers === 0 && s.minute.limit < 0 && s.daily.limit < 0) {
      // Nothing known yet: one request at a time until the first real answer.
      if (s.answered === 0) {
        avail = Math.max(0, 1 - (s.sent - s.done));
        if (avail === 0) blockedBy = 'unknown-limit';
      }
    } else {
      const inFlight = s.sent - s.done;
      const m = s.minute;
      if (m.limit >= 0 && m.rem >= 0) {
        let a = m.rem - m.unc;
        // Answers without headers leave `unc` high; with nothing in flight, one request refreshes it,
        // unless the probes answered without a count have spent a whole window already.
        if (a <= 0 && inFlight === 0 && m.rem > 0 && m.phantomN < Math.max(1, m.limit) && !(now < this.#zeroLapses(m))) a = 1;
        // A limit of 0 would hold the queue forever: one request a window reads whether it was raised.
        if (a <= 0 && inFlight === 0 && m.limit === 0 && now >= m.snapAt + m.windowMs + this.#config.marginMs) a = 1;
        const held = phase.heldUnits(m, now);
        if (held > 0 && a > 0 && want + backlog > a) {
          // Keep units for the late probe and the scout (only when the queue would spend them all now anyway).
          a -= Math.min(held, a);
          if (a <= 0 && want > 0) {
            retryAt = phase.holdUntil(m, now);
            blockedBy = 'scout';
          }
        }
        if (a <= 0 && blockedBy === undefined) {
          blockedBy = 'budget';
          retryAt = this.#nextMinuteRaise(now);
        }
        avail = Math.min(avail, Math.max(0, a));
      }
      const d = s.daily;
      if (countsDaily && d.limit >= 0 && d.rem >= 0) {
        let a = d.rem - d.unc;
        if (a <= 0 && inFlight === 0 && d.rem > 0) a = 1;
        if (a <= 0) {
          if (inFlight === 0) {
            // Exhausted: park where the reset is known, else let one probe learn it from the 429.
            if (s.nextDailyReset > now && s.dailyResetKnown === 1) {
              this.#park(s.nextDailyReset + this.#config.marginMs);
              result.blockedBy = 'park';
              result.retryAt = s.parkUntil;
              result.parkedUntil = s.parkUntil;
              return result;
            }
            result.dailyUnknownReset = true;
            if (s.dailyProbe === 0 && s.sent - s.done === 0) {
              avail = Math.min(avail, 1);
              probe = true;
            } else {
              avail = 0;
              blockedBy = 'park';
            }
          } else {
            // Spent, with answers in flight that may say more (a reset).
            avail = 0;
            blockedBy = 'daily';
          }
        } else {
          // What is left is kept for others (the results of jobs in flight): wait for them, do not park (what
          // is kept may drop any time: the engine asks again). The keep holds for the day the numbers are of:
          // once it has surely ended, one goes and reads the new one.
          const dayEnd = s.nextDailyReset > 0 ? s.nextDailyReset : d.snapAt + d.windowMs;
          const keep = now < dayEnd ? keepDailyAsked : 0;
          if (a - keep <= 0) {
            avail = 0;
            blockedBy ??= 'daily';
          } else {
            avail = Math.min(avail, a - keep);
          }
        }
      }
    }

    const granted = Math.max(0, Math.min(want, avail));
    if (granted > 0) {
      s.sent += granted;
      s.minute.unc += granted;
      if (countsDaily) s.daily.unc += granted;
      if (test) {
        s.minuteOnlyTests++;
        result.ticket.minuteOnlyTest = true;
      }
      phase.onGrant(s.minute, now);
      if (probe) {
        s.dailyProbe = 1;
        s.parked = 1;
        s.parkUntil = 0;
      }
    }
    result.granted = granted;
    if (granted < want) {
      result.blockedBy = blockedBy ?? 'budget';
      result.retryAt = retryAt;
    }
    return result;
  }

  /** Applies one answer (or failure) to the budgets. */
  settle(ticket: Ticket, outcome: Outcome, trust: SettleTrust = TRUSTED): SettleResult {
    const s = this.data;
    const now = outcome.now;
    const result: SettleResult = { now, gateUntil: undefined, gateWindow: undefined, parked: undefined, changed: false };
    const trusted = trust.trusted;
    /** The request counted in the daily window (it was granted there). */
    const daily = ticket.minuteOnly !== true;
    if (trust.countDone) s.done++;
    if (ticket.minuteOnlyTest === true && s.minuteOnlyTests > 0) s.minuteOnlyTests--;
    // The daily probe is answered (or never left): unless this answer parks the
    // queue below, another may go; otherwise reserve() would refuse forever.
    if (s.dailyProbe === 1 && s.parkUntil === 0 && s.sent === s.done) s.dailyProbe = 0;
    if (!outcome.sent) {
      // Never left: give its unit back where no snapshot has counted it since.
      if (trusted && ticket.verMinute === s.minute.ver && s.minute.unc > 0) s.minute.unc--;
      if (trusted && daily && ticket.verDaily === s.daily.ver && s.daily.unc > 0) s.daily.unc--;
      return result;
    }

    const is429 = outcome.status === 429;
    const counted = !is429 && outcome.status !== undefined;
    if (counted && (outcome.status as number) < 500) s.answered = 1;
    const snap = outcome.snapshot;
    this.#tick(now);

    let appliedMinute = false;
    let appliedDaily = false;
    if (snap?.present && trusted) {
      s.headers = 1;
      if (!daily && counted) {
        if (s.minuteOnly !== 3 && countedBelow(s.daily, snap.daily)) s.minuteOnly = 3;
        else if (s.minuteOnly === 0 && notCounted(s.daily, snap.daily, ticket.verDaily, ticket.epochDaily)) s.minuteOnly = 1;
      }
      if (s.minuteOnly !== 0) result.minuteLaneCountsDaily = s.minuteOnly !== 1;
      appliedMinute = this.#apply(s.minute, snap.minute, ticket.verMinute, ticket.epochMinute, ticket, counted, now, true);
      // An answer the daily window did not count is no count there: an unchanged `Daily-Remaining` is no reset.
      appliedDaily = this.#apply(s.daily, snap.daily, ticket.verDaily, ticket.epochDaily, ticket, counted && daily, now, false);
      result.changed = appliedMinute || appliedDaily;
    } else if (snap?.present) {
      s.headers = 1;
      const minuteChanged = applyUntrusted(s.minute, snap.minute, now);
      const dailyChanged = applyUntrusted(s.daily, snap.daily, now);
      result.changed = minuteChanged || dailyChanged;
    }
    if (counted && trusted) {
      // No count applied for a window (none sent, or a stale one ignored): the server counted it all the same.
      if (!appliedMinute) {
        // (A gateway error may never have reached the limiter: only a status below 500 proves a count.)
        if (ticket.verMinute === s.minute.ver && (outcome.status as number) < 500) hide(s.minute, s.done);
        absorb(s.minute, snap?.minute.remaining !== undefined, now);
      }
      if (!appliedDaily && daily) absorb(s.daily, snap?.daily.remaining !== undefined, now);
    }
    if (counted && trusted && s.minute.limit >= 0) {
      this.#log.push(ticket.sentAt, now);
      s.minute.lastRecv = now;
    }

    if (!daily && (is429 ? refusedWindow(snap) === 'daily' : ticket.minuteOnlyTest === true && counted && (outcome.status as number) < 500)) {
      // Said not to count daily: refused by the daily window, the word is revoked until the day resets;
      // answered while the day was spent (the test), it is proven.
      // (Shown to count daily for good, it stays so.)
      if (is429) {
        if (s.minuteOnly !== 3) s.minuteOnly = 2;
      } else if (s.minuteOnly === 0) s.minuteOnly = 1;
    }

    if (is429) {
      const daily = refusedWindow(snap) === 'daily';
      const wait = (snap?.retryAfterMs ?? outcome.fallbackGateMs) + outcome.jitterMs;
      if (daily) {
        // Without Retry-After: a real day resets at midnight UTC (ModelBeam's docs), a compressed one is not known.
        const realDay = s.daily.windowMs === DAY_MS;
        s.nextDailyReset = now + (snap?.retryAfterMs ?? (realDay ? untilMidnightUtc(now) : outcome.fallbackGateMs));
        s.dailyResetKnown = snap?.retryAfterMs !== undefined || realDay ? 1 : 0;
        this.#park(s.nextDailyReset + outcome.jitterMs);
        result.parked = { until: s.parkUntil };
        result.gateWindow = 'daily';
        result.gateUntil = s.parkUntil;
      } else {
        const m = s.minute;
        s.gateUntil = Math.max(s.gateUntil, now + wait);
        s.gated = 1;
        if (m.limit >= 0) m.rem = 0;
        phase.onRefused(m, now, snap?.retryAfterMs);
        result.gateUntil = s.gateUntil;
        result.gateWindow = 'minute';
      }
      return result;
    }

    const d = s.daily;
    if (d.limit >= 0 && d.rem === 0 && s.sent === s.done && s.parked === 0) {
      if (s.nextDailyReset > now && s.dailyResetKnown === 1) {
        this.#park(s.nextDailyReset + this.#config.marginMs);
        result.parked = { until: s.parkUntil };
      } else {
        result.parked = { until: undefined };
      }
    }
    return result;
  }

  view(now: number): BudgetView {
    this.#tick(now);
    return this.currentView(now);
  }

  /** The view at `now` without letting time raise anything first. */
  currentView(now: number): BudgetView {
    const s = this.data;
    const daily = windowView(s.daily);
    // When the day ends, where it is the server's word (a daily 429's Retry-After, a stated reset, carried forward
    // a day at a time). A guess (the latest a reset seen in the numbers can have been) is not shown: it may be late
    // by the gap between two answers, and a client that waited for it would start the next day that much late.
    if (s.nextDailyReset > 0 && s.dailyResetKnown === 1) {
      daily.nextResetAfter = s.nextDailyReset;
      daily.nextResetBy = s.nextDailyReset;
    }
    return {
      minute: windowView(s.minute),
      daily,
      gateUntil: s.gateUntil > now ? s.gateUntil : undefined,
      parkedUntil: s.parked === 1 && s.parkUntil > now ? s.parkUntil : undefined,
      sent: s.sent,
      done: s.done,
    };
  }

  /** Applies one window's part of a snapshot. Returns true when the budget moved. */
  #apply(
    w: WindowState,
    snap: WindowSnapshot,
    ver: number,
    epoch: number,
    ticket: Ticket,
    counted: boolean,
    now: number,
    minute: boolean,
  ): boolean {
    const fresh = ver === w.ver;
    let limitChanged = false;
    const prevLimit = w.limit;
    if (snap.limit !== undefined) {
      if (w.limit < 0 || (fresh && snap.limit !== w.limit) || snap.limit < w.limit) {
        limitChanged = w.limit >= 0 && snap.limit !== w.limit;
        w.limit = snap.limit;
        if (w.rem > w.limit) w.rem = w.limit;
        if (minute) phase.onLimitLearned(w, ticket.sentAt);
      }
    }
    const r = snap.remaining;
    if (r === undefined || w.limit < 0) return limitChanged;
    if (minute && r === 0) w.zeroAt = now;
    if (minute) this.#dropAnswered(now);
    const freshBound = Math.max(0, this.data.sent - ticket.doneAtSend - 1);

    if (!fresh) {
      if (epoch !== w.epoch || w.srvRem < 0 || r >= w.srvRem) return limitChanged;
      const unc = Math.min(freshBound, Math.max(0, w.unc - (w.srvRem - r)));
      setSnapshot(w, r, unc, ticket.sentAt, now);
      return true;
    }

    const first = w.lastSrvRem < 0;
    // Answers the server counted after the previous snapshot and before this request.
    const hidden = minute && ticket.doneAtSend >= w.hidDone ? w.hidN : 0;
    const last = w.lastSrvRem - hidden;
    const jump = !first && (counted ? r >= last : r > last);
    let unc = freshBound;
    if (!jump && w.srvRem >= 0) unc = Math.min(unc, Math.max(0, w.unc - (w.srvRem - r)));
    const prevSnapSentAt = w.snapSentAt;
    // Units the server set free between the previous snapshot and this one.
    const freed = r - last + (counted ? 1 : 0) - Math.max(0, w.limit - prevLimit);
    setSnapshot(w, r, unc, ticket.sentAt, now);
    if (minute && counted) phase.onCounted(w);
    if (!minute) {
      const d = this.data;
      if (jump && !limitChanged) {
        // Keep a reset already predicted (from a daily 429's Retry-After, carried forward a day at a time);
        // otherwise guess: the next midnight UTC for a real day, else the latest this one can have been.
        if (!(d.nextDailyReset > now)) {
          d.nextDailyReset = w.windowMs === DAY_MS ? now + untilMidnightUtc(now) : now + w.windowMs;
          d.dailyResetKnown = 0;
        }
        d.parked = 0;
        d.parkUntil = 0;
        d.dailyProbe = 0;
        if (d.minuteOnly === 2) d.minuteOnly = 0;
        w.epoch++;
      }
      // The server said when the day resets (no further away than a day: a longer wait contradicts the window).
      if (snap.resetInMs !== undefined && snap.resetInMs > 0 && snap.resetInMs <= w.windowMs) {
        d.nextDailyReset = now + snap.resetInMs;
        d.dailyResetKnown = 1;
      }
      return true;
    }
    if (jump && !limitChanged) {
      w.epoch++;
      phase.onJump(w, {
        remaining: r,
        now,
        sentAt: ticket.sentAt,
        prevSnapSentAt,
        freed,
        sent: this.data.sent,
        marginMs: this.#config.marginMs,
        recentAnswers: () => this.#log.count(now - w.windowMs, ticket.sentAt),
      });
      this.#forget(w, freed);
    } else if (jump) {
      // A jump that came with a limit change. When it freed more than the raised limit explains, the window
      // also reset (or slid), and where cannot be told: a phase learnt before would predict a reset that has
      // already happened, so it is forgotten, and time alone raises the budget until it is learnt again.
      if (freed > 0) {
        phase.forgetPhase(w);
        w.epoch++;
      }
      this.#forget(w, freed);
    } else {
      phase.onNoJump(w, ticket.sentAt);
    }
    if (snap.resetInMs !== undefined && snap.resetInMs <= w.windowMs + RESET_GRAIN_MS) {
      // (A reset further away than the window is long contradicts the window: it is not used.) The server's limiter
      // processed the request between its sending and now, and stated the reset in whole seconds rounded up (every
      // limiter we know does, seconds to go or an epoch second alike): it comes up to a second before what it says.
      // And a window that counted the request resets no later than a window after it: a reset stated further away
      // than that is the rounding (an epoch second rounded up states a reset right after the request's window opened
      // up to a whole second late, a whole window of 1 s), so the window's own length is the upper end then.
      const hi = now + Math.min(snap.resetInMs, w.windowMs);
      phase.onStatedReset(w, Math.min(ticket.sentAt + snap.resetInMs - RESET_GRAIN_MS, hi), hi, now);
    }
    return true;
  }

  /**
   * The server's count went back up: answered requests it may no longer count
   * must not raise the budget again when they expire. Which ones a sliding
   * window forgot cannot be told from the count alone, so all are dropped (a
   * few units then come back a window late, never early). `freed` is kept for
   * a finer rule.
   */
  #forget(_w: WindowState, _freed: number): void {
    this.#log.clear();
  }

  /** Raises the minute budget for everything that time has set free. */
  #tick(now: number): void {
    const w = this.data.minute;
    if (w.limit < 0 || w.rem < 0) return;
    // The slide read: one request reads what the window freed since a partial jump.
    if (phase.slideDue(w, now, w.rem - w.unc <= 0, this.data.sent)) letOneRead(w);
    const expiry = w.windowMs + this.#config.marginMs;
    while (this.#log.peekRecv() + expiry <= now) {
      this.#log.shift();
      if (w.rem < w.limit) {
        w.rem++;
        w.srvRem = -1;
        w.zeroAt = 0;
      }
    }
    if (w.snapAt > 0 && w.rem < w.limit && now >= w.snapAt + expiry && now >= w.phantomAt + expiry) {
      // Whatever the stale snapshot counted, ours or not, has left every window by now.
      w.rem = w.limit;
      w.srvRem = -1;
      w.snapAt = 0;
      w.probe = 0;
      w.zeroAt = 0;
    }
    if (w.phantomAt > 0 && now >= w.phantomAt + expiry) {
      // So have the probes answered without a count: only what is in flight stays uncounted, and the
      // leave given to read past them is no count either.
      w.unc = Math.min(w.unc, this.data.sent - this.data.done);
      w.rem = Math.min(w.rem, w.limit);
      w.phantomN = 0;
      w.phantomAt = 0;
    }
    if (phase.resetDue(w, now, this.#config.marginMs)) {
      // The fixed window has surely reset. Send one request to read the new
      // numbers before the rest: a limit lowered meanwhile shows up there.
      phase.onPredictedReset(w, now, this.data.sent === this.data.done);
      this.#log.clear();
      letOneRead(w);
    }
  }

  /** Answers older than one window are reflected in any snapshot taken now. */
  #dropAnswered(now: number): void {
    const expiry = this.data.minute.windowMs + this.#config.marginMs;
    while (this.#log.peekRecv() + expiry <= now) this.#log.shift();
  }

  /** When what the newest `Remaining: 0` answer counted has left the window (0 for none). */
  #zeroLapses(w: WindowState): number {
    return w.zeroAt > 0 ? w.zeroAt + w.windowMs + this.#config.marginMs : 0;
  }

  /** The next time the minute budget can grow by itself, if any. */
  #nextMinuteRaise(now: number): number | undefined {
    const w = this.data.minute;
    const margin = this.#config.marginMs;
    let t = this.#log.size > 0 ? this.#log.peekRecv() + w.windowMs + margin : Infinity;
    if (w.snapAt > 0 && (w.rem < w.limit || w.limit === 0)) t = Math.min(t, Math.max(w.snapAt, w.phantomAt) + w.windowMs + margin);
    if (this.#zeroLapses(w) > now) t = Math.min(t, this.#zeroLapses(w));
    if (w.phantomAt > 0 && w.phantomAt + w.windowMs + margin > now) t = Math.min(t, w.phantomAt + w.windowMs + margin);
    t = Math.min(t, phase.nextEvent(w, now, margin));
    return Number.isFinite(t) ? t : undefined;
  }

  /** What a request sent at `now` carries back to `settle`: the state it was sent in. */
  #ticket(now: number, countsDaily: boolean): ReserveResult['ticket'] {
    const s = this.data;
    return {
      doneAtSend: s.done,
      verMinute: s.minute.ver,
      verDaily: s.daily.ver,
      epochMinute: s.minute.epoch,
      epochDaily: s.daily.epoch,
      sentAt: now,
      ...(countsDaily ? {} : { minuteOnly: true }),
    };
  }

  /** The daily window is spent: parked, or nothing left of what it allows. */
  #daySpent(): boolean {
    const d = this.data.daily;
    return this.data.parked === 1 || (d.limit >= 0 && d.rem >= 0 && d.rem - d.unc <= 0);
  }

  #reopenGate(): void {
    const s = this.data;
    s.gated = 0;
    const m = s.minute;
    // Retry-After said we may try again: let one request through to read the new numbers.
    if (m.limit >= 0) letOneRead(m);
  }

  #park(until: number): void {
    const s = this.data;
    s.parked = 1;
    s.parkUntil = until;
  }

  #unpark(now: number): void {
    const s = this.data;
    const d = s.daily;
    s.parked = 0;
    s.parkUntil = 0;
    s.dailyProbe = 0;
    if (s.minuteOnly === 2) s.minuteOnly = 0;
    if (s.nextDailyReset > 0 && s.nextDailyReset <= now) s.nextDailyReset += d.windowMs;
    if (d.limit >= 0) {
      // (A limit of 0 still lets one request a day read whether it was raised.)
      d.rem = Math.max(d.limit, 1);
      d.srvRem = -1;
      // The reset is applied here: the day's first answer must not count as another one.
      d.lastSrvRem = -1;
      d.ver++;
      d.epoch++;
    }
  }
}
