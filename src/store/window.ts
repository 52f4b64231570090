/**
 * The rules that touch one window's state alone: a new window, a snapshot
 * taken, a read let through, an answer absorbed, the view. The rules that
 * need both windows or the answer log are in budget-state.ts.
 */
import type { WindowSnapshot } from '../headers/types.js';
import type { WindowState } from './budget-state.js';
import * as phase from './phase.js';
import type { WindowView } from './types.js';

/** A new window; `seed`: a limit known in advance. */
export function newWindow(windowMs: number, seed: number | undefined): WindowState {
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
    zeroAt: 0,
    holdOff: 0,
  };
}

/**
 * Lets one request beyond those in flight go, to read the server's numbers
 * (after a predicted reset, a gate reopening or a partial jump in a sliding
 * window). It is the probe: a scout hold would eat its one unit.
 */
export function letOneRead(w: WindowState): void {
  w.rem = Math.max(w.rem, w.unc + 1);
  w.srvRem = -1;
  w.zeroAt = 0;
  w.ver++;
  phase.onRead(w);
  w.probe = 1;
  w.phantomN = 0;
}

/**
 * An untrusted snapshot (see `SettleTrust`): it may lower the limit and the remaining count, nothing else.
 * Nor may it bring the raise at `snapAt + W` forward: such an answer may be older than the count it lowers
 * (a settle replayed after an outage), and what that count saw still counts until its own `snapAt + W`.
 */
export function applyUntrusted(w: WindowState, snap: WindowSnapshot, now: number): boolean {
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
    w.snapAt = Math.max(w.snapAt, now);
    changed = true;
  }
  return changed;
}

export function setSnapshot(w: WindowState, r: number, unc: number, sentAt: number, now: number): void {
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

/**
 * An answer to a request this window was said not to count shows a count it
 * cannot explain: below the server's last word less everything sent to count
 * here since (`rem - unc` is a lower bound of what is left while only those
 * count). Proof that such requests count here too (or that someone else spends
 * the same quota: waiting for them is right either way). Nothing is proved
 * while `rem` is time's raise, not the server's word, or when the limit moved.
 */
export function countedBelow(w: WindowState, snap: WindowSnapshot): boolean {
  const r = snap.remaining;
  if (r === undefined || w.srvRem < 0 || w.limit < 0) return false;
  if (snap.limit !== undefined && snap.limit !== w.limit) return false;
  return r < w.srvRem - w.unc;
}

/**
 * The opposite proof: an answer to such a request, sent and answered with no
 * request counted here between (no snapshot applied since it was sent, none
 * in flight), shows the server's last word unchanged: it was not counted.
 */
export function notCounted(w: WindowState, snap: WindowSnapshot, sentVer: number, sentEpoch: number): boolean {
  const r = snap.remaining;
  if (r === undefined || w.srvRem < 0 || w.limit < 0 || w.unc !== 0) return false;
  if (sentVer !== w.ver || sentEpoch !== w.epoch) return false;
  if (snap.limit !== undefined && snap.limit !== w.limit) return false;
  return r === w.srvRem;
}

/** A counted answer without this window's count, to a request sent after the current snapshot. */
export function hide(w: WindowState, done: number): void {
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
export function absorb(w: WindowState, hadCount: boolean, now: number): void {
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

export function windowView(w: WindowState): WindowView {
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
