/**
 * A small seeded PRNG (mulberry32) and helpers built on it. The fake server
 * draws every probability, jitter and id from instances of `Prng`, so a run
 * with the same seed and the same request order is reproducible.
 */

/** mulberry32: a 32-bit state PRNG, returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a 32-bit hash of a string. Used to derive sub-seeds and deterministic fake results. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export class Prng {
  readonly #next: () => number;

  /**
   * @param seed the base seed
   * @param stream a name that selects an independent stream, so that e.g.
   *   turning faults on does not shift the job ids drawn from another stream.
   */
  constructor(seed: number, stream = '') {
    this.#next = mulberry32((seed ^ hashString(stream)) >>> 0);
  }

  /** A float in [0, 1). */
  next(): number {
    return this.#next();
  }

  /** True with probability `p` (no draw when `p` is 0 or 1, so rates of 0 never shift the stream). */
  chance(p: number): boolean {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return this.#next() < p;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }

  /** A version-4 UUID built from the stream. */
  uuid(): string {
    const bytes = new Array<number>(16);
    for (let i = 0; i < 16; i += 4) {
      const word = Math.floor(this.#next() * 4294967296) >>> 0;
      bytes[i] = word & 0xff;
      bytes[i + 1] = (word >>> 8) & 0xff;
      bytes[i + 2] = (word >>> 16) & 0xff;
      bytes[i + 3] = (word >>> 24) & 0xff;
    }
    bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
    bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
    const h = bytes.map((b) => HEX[b] ?? '00');
    return (
      h.slice(0, 4).join('') +
      '-' +
      h.slice(4, 6).join('') +
      '-' +
      h.slice(6, 8).join('') +
      '-' +
      h.slice(8, 10).join('') +
      '-' +
      h.slice(10, 16).join('')
    );
  }
}
