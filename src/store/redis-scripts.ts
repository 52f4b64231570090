/**
 * The Lua side of `RedisStore`: one script, `lua/budget.lua`, that reads or
 * compare-and-sets the shared budget document. It holds no budget rule; this
 * file loads it and reads its replies.
 */
import { readFileSync } from 'node:fs';

let source: string | undefined;

/** The script's source, read once per process (`npm run build` copies src/store/lua to dist/store/lua). */
export function budgetScript(): string {
  source ??= readFileSync(new URL('./lua/budget.lua', import.meta.url), 'utf8');
  return source;
}

/** A reply of budget.lua. */
export interface CasReply {
  ok: boolean;
  /** Store time of the answer. */
  now: number;
  /** Generation and write counter stored now ('' and '0': no state). */
  gen: string;
  ver: string;
  /** The stored document ('' when none, and on a successful write). */
  doc: string;
  /** The writer that holds the write lock ('' for none). */
  lockHolder: string;
}

export function parseCasReply(raw: unknown): CasReply {
  if (!Array.isArray(raw) || raw.length !== 6) throw new Error(`Unexpected reply from the RedisStore script: ${JSON.stringify(raw)?.slice(0, 200)}`);
  const [tag, now, gen, ver, doc, lockHolder] = raw.map((v) => String(v)) as [string, string, string, string, string, string];
  if (tag !== 'OK' && tag !== 'CONFLICT') throw new Error(`Unexpected reply tag from the RedisStore script: ${tag}`);
  return { ok: tag === 'OK', now: Number(now), gen, ver, doc, lockHolder };
}
