/**
 * The Lua side of `RedisStore`: loading the scripts of `lua/` (resolving
 * `--- @include "name"` lines), encoding their ARGV and decoding their
 * replies. Every KEYS/ARGV/reply layout is documented in the header of its
 * script; this file must follow them.
 */
import { readFileSync } from 'node:fs';
import type { RateLimitSnapshot } from '../headers/types.js';
import type { BudgetView, Outcome, ReserveResult, SettleResult, Ticket, WindowView } from './types.js';

export const SCRIPT_NAMES = ['init', 'reserve', 'settle', 'view', 'adopt', 'absorb'] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

const INCLUDE = /^--- @include "([a-z-]+)"\s*$/m;

let cache: Record<ScriptName, string> | undefined;

function readLua(name: string): string {
  // Relative to the compiled module: `npm run build` copies src/store/lua to dist/store/lua.
  return readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
}

/** The source of every entry script, includes resolved. Read once per process. */
export function scriptSources(): Record<ScriptName, string> {
  if (cache) return cache;
  const out = {} as Record<ScriptName, string>;
  for (const name of SCRIPT_NAMES) {
    let source = readLua(name);
    for (let match = INCLUDE.exec(source); match; match = INCLUDE.exec(source)) {
      const included = readLua(match[1] as string);
      source = source.slice(0, match.index) + included + source.slice(match.index + match[0].length);
    }
    out[name] = source;
  }
  cache = out;
  return out;
}

// ---- ARGV ------------------------------------------------------------------

/** A number for ARGV: `String()` gives the shortest text that reads back exactly; undefined is ''. */
export function num(value: number | undefined): string {
  return value === undefined ? '' : String(value);
}

/** ARGV[10..] of settle.lua after the lease and the foreign flag. */
export function settleArgs(ticket: Ticket, outcome: Outcome): string[] {
  const snap: RateLimitSnapshot | undefined = outcome.snapshot;
  return [
    num(ticket.doneAtSend),
    num(ticket.verMinute),
    num(ticket.verDaily),
    num(ticket.epochMinute),
    num(ticket.epochDaily),
    num(ticket.sentAt),
    num(outcome.status),
    outcome.sent ? '1' : '0',
    num(outcome.jitterMs),
    num(outcome.fallbackGateMs),
    snap?.present ? '1' : '0',
    snap?.type ?? '',
    num(snap?.retryAfterMs),
    num(snap?.minute.limit),
    num(snap?.minute.remaining),
    num(snap?.daily.limit),
    num(snap?.daily.remaining),
  ];
}

// ---- replies ---------------------------------------------------------------

export interface Reply {
  tag: 'OK' | 'REBUILT' | 'MISMATCH';
  gen: string;
  /** Store time of the answer. */
  now: number;
  /** Everything after the header. */
  rest: string[];
}

export function parseReply(raw: unknown): Reply {
  if (!Array.isArray(raw) || raw.length < 3) throw new Error(`Unexpected reply from a RedisStore script: ${JSON.stringify(raw)}`);
  const strings = raw.map((v) => String(v));
  const tag = strings[0];
  if (tag !== 'OK' && tag !== 'REBUILT' && tag !== 'MISMATCH') throw new Error(`Unexpected reply tag from a RedisStore script: ${tag}`);
  return { tag, gen: strings[1] as string, now: Number(strings[2]), rest: strings.slice(3) };
}

const VIEW_FIELDS = 17;

function at(rest: string[], i: number): string {
  const v = rest[i];
  if (v === undefined) throw new Error(`RedisStore script reply too short (field ${i + 4})`);
  return v;
}

function n(rest: string[], i: number): number {
  return Number(at(rest, i));
}

function opt(rest: string[], i: number): number | undefined {
  const v = at(rest, i);
  return v === '' ? undefined : Number(v);
}

/** Mirrors `windowView` of budget-state.ts. */
function windowView(limit: number, rem: number, unc: number, kind: number, nextLo: number, nextHi: number): WindowView {
  const known = limit >= 0 && rem >= 0;
  return {
    limit: limit >= 0 ? limit : undefined,
    available: known ? Math.max(0, rem - unc) : undefined,
    remaining: rem >= 0 ? rem : undefined,
    uncounted: unc,
    kind: kind === 1 ? 'fixed' : 'unknown',
    nextResetAfter: nextHi > 0 ? nextLo : undefined,
    nextResetBy: nextHi > 0 ? nextHi : undefined,
  };
}

/** The view block of an 'OK' reply, as `BudgetState.view` would report it at `reply.now`. */
export function decodeView(reply: Reply): BudgetView {
  const r = reply.rest;
  const now = reply.now;
  const gateUntil = n(r, 12);
  const parked = n(r, 13);
  const parkUntil = n(r, 14);
  return {
    minute: windowView(n(r, 0), n(r, 1), n(r, 2), n(r, 3), n(r, 4), n(r, 5)),
    daily: windowView(n(r, 6), n(r, 7), n(r, 8), n(r, 9), n(r, 10), n(r, 11)),
    gateUntil: gateUntil > now ? gateUntil : undefined,
    parkedUntil: parked === 1 && parkUntil > now ? parkUntil : undefined,
    sent: n(r, 15),
    done: n(r, 16),
  };
}

export function decodeReserve(
  reply: Reply,
  leasePrefix: string,
): ReserveResult & { reclaimed: number; oldestLease: { expiresAt: number; id: string } | undefined } {
  const r = reply.rest;
  const k = VIEW_FIELDS;
  const granted = n(r, k);
  const blockedBy = at(r, k + 8);
  return {
    now: reply.now,
    granted,
    ticket: {
      doneAtSend: n(r, k + 1),
      verMinute: n(r, k + 2),
      verDaily: n(r, k + 3),
      epochMinute: n(r, k + 4),
      epochDaily: n(r, k + 5),
      sentAt: n(r, k + 6),
    },
    leasePrefix: granted > 0 ? leasePrefix : '',
    retryAt: opt(r, k + 7),
    blockedBy: blockedBy === '' ? undefined : (blockedBy as ReserveResult['blockedBy']),
    parkedUntil: opt(r, k + 9),
    dailyUnknownReset: at(r, k + 10) === '1',
    reclaimed: n(r, k + 11),
    oldestLease: at(r, k + 12) === '' ? undefined : { expiresAt: n(r, k + 12), id: at(r, k + 13) },
  };
}

export function decodeSettle(reply: Reply): SettleResult & { leaseKnown: boolean } {
  const r = reply.rest;
  const k = VIEW_FIELDS;
  const gateWindow = at(r, k + 1);
  return {
    now: reply.now,
    gateUntil: opt(r, k),
    gateWindow: gateWindow === '' ? undefined : (gateWindow as SettleResult['gateWindow']),
    parked: at(r, k + 2) === '1' ? { until: opt(r, k + 3) } : undefined,
    changed: at(r, k + 4) === '1',
    leaseKnown: at(r, k + 5) === '1',
  };
}

/** init.lua's trailer: the stored config, and whether this call created the state. */
export function decodeInit(reply: Reply): { minuteMs: number; dayMs: number; marginMs: number; created: boolean } {
  const r = reply.rest;
  if (reply.tag === 'MISMATCH') return { minuteMs: n(r, 0), dayMs: n(r, 1), marginMs: n(r, 2), created: false };
  const k = VIEW_FIELDS;
  return { minuteMs: n(r, k), dayMs: n(r, k + 1), marginMs: n(r, k + 2), created: at(r, k + 3) === '1' };
}

export function decodeAdopted(reply: Reply): number {
  return n(reply.rest, VIEW_FIELDS);
}
