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
import type { WindowSnapshot } from '../headers/types.js';
import type { BudgetConfig, BudgetView, Outcome, ReserveResult, SettleResult, Ticket, WindowView } from './types.js';

/** State of one window. Plain numbers only, so it maps onto a Redis hash. */
export interface WindowState {
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
   * The slide read: after a partial jump (the count came back up, but not to
   * what we alone would leave) that forgot answers about to leave a sliding
   * window, one request goes at `slideAt`, when they have surely left, to read
   * what that freed. 0 none pending, 1 planned or sent, 2 never again (one
   * was refused: the window is not sliding, others share it).
   */
  slide: number;
  slideAt: number;
  /** Forgotten answers the slide read is for; rises before it count them off. */
  slideN: number;
  /**
   * The read goes only while `sent + 1` is below this: the jump's request,
   * those then uncounted and those sent since may all still count in a
   * sliding window, and with the read they must leave one unit free (the
   * refresh request with nothing in flight may take it).
   */
  slideCap: number;
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
   * Probes answered without a count since the last read began, and when the
   * newest came back (0 for none). Each stays in `unc` (the server counted it
   * in the window the probe reads, but how much is left there is unknown)
   * until it has left that window; once `limit` of them are in, that window
   * is spent and no more probes go.
   */
  phantomN: number;
  phantomAt: number;
  /**
   * 1 once a request was refused inside a window whose reset was predicted:
   * someone else spends this budget too (or the limit was cut), so a unit
   * held back for a late probe or a scout may be gone when it goes. Units
   * are no longer held back.
   */
  holdOff: number;
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
}

function newWindow(windowMs: number, seed: number | undefined): WindowState {
  const limit = seed ?? -1;
  return {
    windowMs,
    limit,
    rem: limit,
    srvRem: -1,
    lastSrvRem: -1,
    unc: 0,
    ver: 0,
    epoch: 0,
    snapSentAt: 0,
    snapAt: 0,
    lastNoJumpSentAt: 0,
    kind: 0,
    nextLo: 0,
    nextHi: 0,
    scoutAt: 0,
    raised: 0,
    probed: 0,
    probe: 0,
    hidN: 0,
    hidDone: 0,
    lastRecv: 0,
    slide: 0,
    slideAt: 0,
    slideN: 0,
    slideCap: 0,
    grid: 0,
    hitLo: 0,
    readHitLo: 0,
    phantomN: 0,
    phantomAt: 0,
    holdOff: 0,
  };
}

/** A growable ring of (sentAt, recvAt) pairs for answered requests, in answer order. */
class AnswerLog {
  static from(entries: readonly (readonly [number, number])[]): AnswerLog {
    const log = new AnswerLog();
    for (const [sentAt, recvAt] of entries) log.push(sentAt, recvAt);
    return log;
  }

  #sent = new Float64Array(64);
  #recv = new Float64Array(64);
  #head = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(sentAt: number, recvAt: number): void {
    if (this.#size === this.#sent.length) this.#grow();
    const i = (this.#head + this.#size) % this.#sent.length;
    this.#sent[i] = sentAt;
    this.#recv[i] = recvAt;
    this.#size++;
  }

  /** recvAt of the oldest entry; Infinity when empty. */
  peekRecv(): number {
    return this.#size === 0 ? Infinity : (this.#recv[this.#head] as number);
  }

  shift(): void {
    this.#head = (this.#head + 1) % this.#sent.length;
    this.#size--;
  }

  clear(): void {
    this.#head = 0;
    this.#size = 0;
  }

  /** Entries sent after `sentAfter` and answered before `recvBefore`. */
  count(sentAfter: number, recvBefore: number): number {
    let n = 0;
    const cap = this.#sent.length;
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#head + k) % cap;
      if ((this.#sent[i] as number) > sentAfter && (this.#recv[i] as number) < recvBefore) n++;
    }
    return n;
  }

  /** The entries, oldest first, as [sentAt, recvAt] pairs. */
  toJSON(): [number, number][] {
    const out: [number, number][] = [];
    const cap = this.#sent.length;
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#head + k) % cap;
      out.push([this.#sent[i] as number, this.#recv[i] as number]);
    }
    return out;
  }

  #grow(): void {
    const cap = this.#sent.length;
    const sent = new Float64Array(cap * 2);
    const recv = new Float64Array(cap * 2);
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#head + k) % cap;
      sent[k] = this.#sent[i] as number;
      recv[k] = this.#recv[i] as number;
    }
    this.#sent = sent;
    this.#recv = recv;
    this.#head = 0;
  }
}

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

/**
 * Lets one request beyond those in flight go, to read the server's numbers
 * (after a predicted reset, a gate reopening or a partial jump in a sliding
 * window). It is the probe: a scout hold would eat its one unit.
 */
function letOneRead(w: WindowState): void {
  w.rem = Math.max(w.rem, w.unc + 1);
  w.srvRem = -1;
  w.ver++;
  w.scoutAt = 0;
  w.probe = 1;
  w.phantomN = 0;
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
    };
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

  /** Grants up to `want` requests now; `backlog` tasks wait beyond those. */
  reserve(want: number, now: number, backlog = Infinity): ReserveResult {
    const s = this.data;
    const result: ReserveResult = {
      now,
      granted: 0,
      ticket: {
        doneAtSend: s.done,
        verMinute: s.minute.ver,
        verDaily: s.daily.ver,
        epochMinute: s.minute.epoch,
        epochDaily: s.daily.epoch,
        sentAt: now,
      },
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
      if (s.parkUntil > now) {
        result.blockedBy = 'park';
        result.retryAt = s.parkUntil;
        result.parkedUntil = s.parkUntil;
        return result;
      }
      if (s.parkUntil > 0) this.#unpark(now);
    }

    this.#tick(now);
    // Versions may have moved just above (gate reopened, park lifted, predicted
    // reset): the request sent now is the one that reads the new numbers, so
    // its ticket must carry them, or its answer would count as stale.
    result.ticket = {
      doneAtSend: s.done,
      verMinute: s.minute.ver,
      verDaily: s.daily.ver,
      epochMinute: s.minute.epoch,
      epochDaily: s.daily.epoch,
      sentAt: now,
    };

    let avail = Infinity;
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
        if (a <= 0 && inFlight === 0 && m.rem > 0 && m.phantomN < Math.max(1, m.limit)) a = 1;
        // A limit of 0 would hold the queue forever: one request a window reads whether it was raised.
        if (a <= 0 && inFlight === 0 && m.limit === 0 && now >= m.snapAt + m.windowMs + this.#config.marginMs) a = 1;
        const held = heldUnits(m, now);
        if (held > 0 && a > 0 && want + backlog > a) {
          // Keep units for the late probe and the scout (only when the queue would spend them all now anyway).
          a -= Math.min(held, a);
          if (a <= 0 && want > 0) {
            retryAt = m.scoutAt > now ? m.scoutAt : scoutTime(m);
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
      if (d.limit >= 0 && d.rem >= 0) {
        let a = d.rem - d.unc;
        if (a <= 0 && inFlight === 0 && d.rem > 0) a = 1;
        if (a <= 0) {
          if (inFlight === 0) {
            // Exhausted: park where the reset is known, else let one probe learn it from the 429.
            if (s.nextDailyReset > now) {
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
            avail = 0;
            blockedBy = 'budget';
          }
        } else {
          avail = Math.min(avail, a);
        }
      }
    }

    const granted = Math.max(0, Math.min(want, avail));
    if (granted > 0) {
      s.sent += granted;
      s.minute.unc += granted;
      s.daily.unc += granted;
      if (s.minute.scoutAt > 0 && now >= s.minute.scoutAt) s.minute.scoutAt = nextHold(s.minute, now);
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
    if (trust.countDone) s.done++;
    // The daily probe is answered (or never left): unless this answer parks the
    // queue below, another may go; otherwise reserve() would refuse forever.
    if (s.dailyProbe === 1 && s.parkUntil === 0 && s.sent === s.done) s.dailyProbe = 0;
    if (!outcome.sent) {
      // Never left: give its unit back where no snapshot has counted it since.
      if (trusted && ticket.verMinute === s.minute.ver && s.minute.unc > 0) s.minute.unc--;
      if (trusted && ticket.verDaily === s.daily.ver && s.daily.unc > 0) s.daily.unc--;
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
      appliedMinute = this.#apply(s.minute, snap.minute, ticket.verMinute, ticket.epochMinute, ticket, counted, now, true);
      appliedDaily = this.#apply(s.daily, snap.daily, ticket.verDaily, ticket.epochDaily, ticket, counted, now, false);
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
      if (!appliedDaily) absorb(s.daily, snap?.daily.remaining !== undefined, now);
    }
    if (counted && trusted && s.minute.limit >= 0) {
      this.#log.push(ticket.sentAt, now);
      s.minute.lastRecv = now;
    }

    if (is429) {
      const daily = snap?.type === 'daily' || (snap?.type === undefined && snap?.daily.remaining === 0);
      const wait = (snap?.retryAfterMs ?? outcome.fallbackGateMs) + outcome.jitterMs;
      if (daily) {
        this.#park(now + wait);
        s.nextDailyReset = now + (snap?.retryAfterMs ?? outcome.fallbackGateMs);
        result.parked = { until: s.parkUntil };
        result.gateWindow = 'daily';
        result.gateUntil = s.parkUntil;
      } else {
        const m = s.minute;
        s.gateUntil = Math.max(s.gateUntil, now + wait);
        s.gated = 1;
        if (m.limit >= 0) m.rem = 0;
        // A refused slide read: the window did not slide, so no more of them.
        if (m.slide === 1 && m.slideAt === 0) m.slide = 2;
        // Refused before the predicted reset: the budget is shared (or was cut); hold no more units back.
        if (m.kind === 1 && m.nextHi > 0 && now < m.nextLo) m.holdOff = 1;
        if (snap?.retryAfterMs !== undefined && m.kind === 1 && now + snap.retryAfterMs < m.nextHi) {
          m.nextHi = now + snap.retryAfterMs;
          // The server's word wins over a lower side it contradicts: never an inverted bracket.
          if (m.nextLo > m.nextHi) m.nextLo = m.nextHi;
        }
        result.gateUntil = s.gateUntil;
        result.gateWindow = 'minute';
      }
      return result;
    }

    const d = s.daily;
    if (d.limit >= 0 && d.rem === 0 && s.sent === s.done && s.parked === 0) {
      if (s.nextDailyReset > now) {
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
    return {
      minute: windowView(s.minute),
      daily: windowView(s.daily),
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
        if (minute && w.probed === 0) this.#planProbe(w, ticket.sentAt);
      }
    }
    const r = snap.remaining;
    if (r === undefined || w.limit < 0) return limitChanged;
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
    // The slide read (or a request after it) is answered, not refused: another may follow the next partial jump.
    if (minute && counted && w.slide === 1 && w.slideAt === 0) w.slide = 0;
    if (!minute) {
      if (jump && !limitChanged) {
        // Keep a reset already predicted (from a daily 429's Retry-After, carried
        // forward a day at a time); otherwise the latest this one can have been.
        if (!(this.data.nextDailyReset > now)) this.data.nextDailyReset = now + w.windowMs;
        this.data.parked = 0;
        this.data.parkUntil = 0;
        this.data.dailyProbe = 0;
        w.epoch++;
      }
      return true;
    }
    if (jump && !limitChanged) this.#onReset(w, r, ticket, prevSnapSentAt, now, freed);
    else if (jump) this.#onLimitJump(w, freed);
    else this.#onNoReset(w, ticket.sentAt);
    return true;
  }

  /** A fresh answer showed the window reset between the previous snapshot and now. */
  #onReset(w: WindowState, r: number, ticket: Ticket, prevSnapSentAt: number, now: number, freed: number): void {
    w.epoch++;
    if (w.kind === 0) {
      // Could a sliding window explain this? Only if it forgot none of our recent requests.
      const recent = this.#log.count(now - w.windowMs, ticket.sentAt);
      if (r > w.limit - 1 - recent) w.kind = 1;
    }
    if (w.slideAt > 0) {
      // Another rise before the slide read: what it freed is read already.
      w.slideN -= Math.max(0, freed);
      if (w.slideN <= 0) {
        w.slide = 0;
        w.slideAt = 0;
      }
    } else if (w.slide === 0 && r + 1 + w.unc < w.limit && w.lastRecv > 0) {
      // A partial jump: the answers forgotten below leave a sliding window soon; one request reads then what they freed.
      const at = w.lastRecv + w.windowMs + this.#config.marginMs;
      if (at > now && at <= now + w.windowMs / 4) {
        w.slide = 1;
        w.slideAt = at;
        w.slideN = w.limit - 1 - r - w.unc;
        w.slideCap = this.data.sent + w.limit - 1 - w.unc;
      }
    }
    this.#forget(w, freed);
    if (w.kind !== 1) return;
    if (w.hitLo > 0 && now < w.hitLo) w.grid = 1;
    w.hitLo = w.raised === 1 ? w.readHitLo : 0;
    w.readHitLo = 0;
    const seen = Math.max(prevSnapSentAt, w.lastNoJumpSentAt);
    let lo = seen;
    if (w.nextLo > 0 && w.nextLo > lo && w.nextLo < now) lo = w.nextLo;
    // On a grid, the bracket predicted for this reset (an answer came since the reset before it, and
    // not a window later) still holds where it agrees with this one: keep its upper end, or it would
    // creep by a margin and a round trip each window (the read goes after it).
    const predicted = seen >= w.nextHi - w.windowMs && now < w.nextLo + w.windowMs;
    const hi = w.grid === 1 && predicted && w.nextHi > lo && w.nextHi < now ? w.nextHi : now;
    w.nextLo = lo + w.windowMs;
    w.nextHi = hi + w.windowMs;
    w.raised = 0;
    w.lastNoJumpSentAt = 0;
    this.#planScout(w, now);
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

  /** A fresh answer was counted in the same window as the previous one. */
  #onNoReset(w: WindowState, sentAt: number): void {
    if (sentAt > w.lastNoJumpSentAt) w.lastNoJumpSentAt = sentAt;
    if (w.raised === 1) {
      // We predicted a reset that the server has not made: stop trusting the phase.
      w.kind = 0;
      w.nextLo = 0;
      w.nextHi = 0;
      w.scoutAt = 0;
      w.raised = 0;
      w.grid = 0;
      return;
    }
    if (w.nextHi > 0 && sentAt > w.nextLo && sentAt < w.nextHi) w.nextLo = sentAt;
  }

  /**
   * A fresh jump that came with a limit change. When it freed more than the
   * raised limit explains, the window also reset (or slid), and where cannot
   * be told: a phase learnt before would predict a reset that has already
   * happened, so it is forgotten, and time alone raises the budget until it
   * is learnt again.
   */
  #onLimitJump(w: WindowState, freed: number): void {
    if (freed > 0) this.#dropPhase(w);
    this.#forget(w, freed);
  }

  /** Forgets the phase of the window (see #onLimitJump). */
  #dropPhase(w: WindowState): void {
    w.kind = 0;
    w.nextLo = 0;
    w.nextHi = 0;
    w.scoutAt = 0;
    w.raised = 0;
    w.grid = 0;
    w.epoch++;
  }

  /** First window: hold one unit back to probe the middle of the window for a reset. */
  #planProbe(w: WindowState, firstSentAt: number): void {
    w.probed = 1;
    if (w.limit < 2) return;
    w.scoutAt = firstSentAt + w.windowMs / 2;
  }

  /** A reset was bracketed: plan the units held back in the window now starting. */
  #planScout(w: WindowState, now: number): void {
    w.scoutAt = nextHold(w, now);
  }

  /** Raises the minute budget for everything that time has set free. */
  #tick(now: number): void {
    const w = this.data.minute;
    if (w.limit < 0 || w.rem < 0) return;
    if (w.slideAt > 0 && now >= w.slideAt) {
      w.slideAt = 0;
      if (w.rem - w.unc <= 0 && this.data.sent + 1 < w.slideCap) {
        // The slide read: one request reads what the window freed since the partial jump.
        letOneRead(w);
      } else {
        // Units still known (they read the count anyway), or sent too much since to read without a risk of a 429.
        w.slide = 0;
      }
    }
    const expiry = w.windowMs + this.#config.marginMs;
    while (this.#log.peekRecv() + expiry <= now) {
      this.#log.shift();
      if (w.rem < w.limit) {
        w.rem++;
        w.srvRem = -1;
      }
    }
    if (w.snapAt > 0 && w.rem < w.limit && now >= w.snapAt + expiry && now >= w.phantomAt + expiry) {
      // Whatever the stale snapshot counted, ours or not, has left every window by now.
      w.rem = w.limit;
      w.srvRem = -1;
      w.snapAt = 0;
      w.probe = 0;
    }
    if (w.phantomAt > 0 && now >= w.phantomAt + expiry) {
      // So have the probes answered without a count: only what is in flight stays uncounted, and the
      // leave given to read past them is no count either.
      w.unc = Math.min(w.unc, this.data.sent - this.data.done);
      w.rem = Math.min(w.rem, w.limit);
      w.phantomN = 0;
      w.phantomAt = 0;
    }
    if (w.kind === 1 && w.raised === 0 && w.nextHi > 0 && now >= w.nextHi + this.#config.marginMs) {
      // The fixed window has surely reset. Send one request to read the new
      // numbers before the rest: a limit lowered meanwhile shows up there.
      w.raised = 1;
      w.readHitLo = this.data.sent === this.data.done ? now + w.windowMs : 0;
      this.#log.clear();
      letOneRead(w);
    }
  }

  /** Answers older than one window are reflected in any snapshot taken now. */
  #dropAnswered(now: number): void {
    const expiry = this.data.minute.windowMs + this.#config.marginMs;
    while (this.#log.peekRecv() + expiry <= now) this.#log.shift();
  }

  /** The next time the minute budget can grow by itself, if any. */
  #nextMinuteRaise(now: number): number | undefined {
    const w = this.data.minute;
    const margin = this.#config.marginMs;
    let t = this.#log.size > 0 ? this.#log.peekRecv() + w.windowMs + margin : Infinity;
    if (w.snapAt > 0 && (w.rem < w.limit || w.limit === 0)) t = Math.min(t, Math.max(w.snapAt, w.phantomAt) + w.windowMs + margin);
    if (w.phantomAt > 0 && w.phantomAt + w.windowMs + margin > now) t = Math.min(t, w.phantomAt + w.windowMs + margin);
    if (w.kind === 1 && w.raised === 0 && w.nextHi > 0) t = Math.min(t, w.nextHi + margin);
    if (w.slideAt > now) t = Math.min(t, w.slideAt);
    // A scout time already passed frees nothing more: it would make callers retry at once, forever.
    if (w.scoutAt > now) t = Math.min(t, w.scoutAt);
    return Number.isFinite(t) ? t : undefined;
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

/**
 * When the next unit held back goes, once the phase is known (0: none). First
 * the late probe, which reads a limit raised during the window while what
 * it allows can still be spent there; then, while the bracket of the next
 * reset is wide, the scout that narrows it.
 */
function nextHold(w: WindowState, now: number): number {
  if (w.kind !== 1 || w.nextHi <= 0 || w.holdOff === 1) return 0;
  const late = w.nextLo - w.windowMs * LATE_PROBE;
  if (late > now) return late;
  const scout = scoutTime(w);
  return scout > now ? scout : 0;
}

/** When the scout goes while the bracket of the next reset is wide; 0 when it is narrow enough. */
function scoutTime(w: WindowState): number {
  const width = w.nextHi - w.nextLo;
  if (w.kind !== 1 || w.nextHi <= 0 || w.holdOff === 1 || width <= w.windowMs * SCOUT_TOLERANCE) return 0;
  return w.nextLo + width * SCOUT_POSITION;
}

/**
 * Units held back at `now`: one for the hold planned at `scoutAt`, and one
 * for a scout still to follow it (after the late probe, while the bracket is
 * wide), so that the late probe does not spend the scout's unit.
 */
function heldUnits(w: WindowState, now: number): number {
  const scout = scoutTime(w);
  const follows = w.scoutAt > 0 && scout > now && w.scoutAt !== scout ? 1 : 0;
  return (w.scoutAt > now ? 1 : 0) + follows;
}

/** An untrusted snapshot (see `SettleTrust`): it may lower the limit and the remaining count, nothing else. */
function applyUntrusted(w: WindowState, snap: WindowSnapshot, now: number): boolean {
  let changed = false;
  if (snap.limit !== undefined && (w.limit < 0 || snap.limit < w.limit)) {
    w.limit = snap.limit;
    if (w.rem > w.limit) w.rem = w.limit;
    changed = true;
  }
  const r = snap.remaining;
  if (r !== undefined && w.limit >= 0 && (w.rem < 0 || r < w.rem)) {
    w.rem = Math.min(r, w.limit);
    w.srvRem = -1;
    w.snapAt = now;
    changed = true;
  }
  return changed;
}

function setSnapshot(w: WindowState, r: number, unc: number, sentAt: number, now: number): void {
  w.snapAt = now;
  w.rem = Math.min(r, w.limit);
  w.srvRem = w.rem;
  w.lastSrvRem = w.rem;
  w.unc = unc;
  w.ver++;
  w.snapSentAt = sentAt;
  w.probe = 0;
  w.hidN = 0;
  w.hidDone = 0;
  w.phantomN = 0;
  w.phantomAt = 0;
}

/** A counted answer without this window's count, to a request sent after the current snapshot. */
function hide(w: WindowState, done: number): void {
  if (w.lastSrvRem < 0) return;
  w.hidN++;
  w.hidDone = done;
}

/**
 * One answered request whose count was not applied (none sent, or a stale one
 * ignored): from `unc` into `rem` (rem - unc is unchanged), so that its expiry
 * gives it back and `rem` runs out when the window does. Except an answer with
 * no count at all while `rem` is a probe's leave (after a predicted reset or a
 * gate), not a count: the refresh request reads the real count instead. `rem` now counts a request answered at `now`, so the bulk
 * raise at `snapAt + W` must wait for it too.
 */
function absorb(w: WindowState, hadCount: boolean, now: number): void {
  if (w.limit < 0 || w.rem <= 0 || w.unc <= 0) return;
  if (!hadCount && w.probe === 1) {
    w.phantomN++;
    w.phantomAt = now;
    return;
  }
  w.rem--;
  w.unc--;
  if (w.srvRem >= 0) w.srvRem = w.rem;
  w.snapAt = now;
}

function windowView(w: WindowState): WindowView {
  const known = w.limit >= 0 && w.rem >= 0;
  return {
    limit: w.limit >= 0 ? w.limit : undefined,
    available: known ? Math.max(0, w.rem - w.unc) : undefined,
    remaining: w.rem >= 0 ? w.rem : undefined,
    uncounted: w.unc,
    kind: w.kind === 1 ? 'fixed' : 'unknown',
    nextResetAfter: w.nextHi > 0 ? w.nextLo : undefined,
    nextResetBy: w.nextHi > 0 ? w.nextHi : undefined,
  };
}

