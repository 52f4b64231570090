/**
 * Per-call latency of the Redis path: `RedisStore.reserve` and `settle`, one
 * unit at a time, with budget to spare (nothing blocks), measured from the
 * caller. First one process alone, then `procs` stores in one process each
 * hammering the same account (contention: every write may be overtaken).
 *
 *   npx tsx bench/tools/redis-latency.ts [pairs=2000] [procs=4] [windowMs=60000]
 *
 * The answer log holds about one window of answers, so `windowMs` sets how
 * much state each call carries: at 1,000 calls a second, a 250 ms window keeps
 * about 250 answers (a busy real API), a 60 s one every answer of the run.
 *
 * It imports the store from this checkout's src/, so the same file run in a
 * checkout of another commit measures that commit's store.
 */
import { fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { RedisStore } from '../../src/store/redis-store.js';
import type { BudgetConfig, Ticket } from '../../src/store/types.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const windowMs = Number(process.argv[process.argv[2] === '--child' ? 6 : 4] ?? 60_000);
const CONFIG: BudgetConfig = { minuteMs: windowMs, dayMs: 86_400_000, seeds: { minute: 1e9, daily: 1e9 }, marginMs: 1, leaseMs: 30_000 };

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

async function measure(account: string, prefix: string, pairs: number): Promise<{ reserve: number[]; settle: number[] }> {
  const store = new RedisStore({ redis: REDIS_URL, keyPrefix: prefix, account });
  await store.init(CONFIG);
  const reserve: number[] = [];
  const settle: number[] = [];
  for (let i = 0; i < pairs + 100; i++) {
    let t = performance.now();
    const r = await store.reserve(1, Date.now());
    const dr = performance.now() - t;
    if (r.granted !== 1) throw new Error(`not granted: ${JSON.stringify(r)}`);
    const ticket: Ticket = { ...r.ticket, lease: `${r.leasePrefix}0` };
    t = performance.now();
    await store.settle(ticket, { now: Date.now(), status: 200, snapshot: undefined, sent: true, jitterMs: 0, fallbackGateMs: 1000 });
    const ds = performance.now() - t;
    if (i >= 100) {
      reserve.push(dr);
      settle.push(ds);
    }
  }
  await store.close();
  return { reserve, settle };
}

function summary(label: string, xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `${label}: median ${pct(s, 0.5).toFixed(3)} ms, p99 ${pct(s, 0.99).toFixed(3)} ms`;
}

if (process.argv[2] === '--child') {
  const [account, prefix, pairs] = [process.argv[3] as string, process.argv[4] as string, Number(process.argv[5])];
  const r = await measure(account, prefix, pairs);
  process.send?.(r);
  process.exit(0);
}

const pairs = Number(process.argv[2] ?? 2000);
const procs = Number(process.argv[3] ?? 4);
const prefix = `mbs-latency:${Date.now()}:`;
const alone = await measure('alone', prefix, pairs);
console.log(`window ${windowMs} ms; one process, ${pairs} reserve+settle pairs`);
console.log(`  ${summary('reserve', alone.reserve)}`);
console.log(`  ${summary('settle ', alone.settle)}`);

const self = fileURLToPath(import.meta.url);
const results = await Promise.all(
  Array.from(
    { length: procs },
    () =>
      new Promise<{ reserve: number[]; settle: number[] }>((resolve, reject) => {
        const child = fork(self, ['--child', 'shared', prefix, String(pairs), String(windowMs)], { execArgv: ['--import', 'tsx'] });
        child.once('message', (m) => resolve(m as { reserve: number[]; settle: number[] }));
        child.once('error', reject);
        child.once('exit', (code) => code === 0 || reject(new Error(`child exited ${code}`)));
      }),
  ),
);
console.log(`${procs} processes on one account, ${pairs} pairs each`);
console.log(`  ${summary('reserve', results.flatMap((r) => r.reserve))}`);
console.log(`  ${summary('settle ', results.flatMap((r) => r.settle))}`);
process.exit(0);
