/** log2 of the number of tables the ids are spread over (by the top bits of the key's third word). */
const SEGMENT_BITS = 6;
const SEGMENTS = 1 << SEGMENT_BITS;
/** A table grows when it would be fuller than this: linear probing stays short (an absent id probes ~13 slots on average at 80 %). */
const MAX_LOAD = 0.8;
/** And grows by half, so that it is 53 % full after growing. */
const GROWTH = 1.5;
const MIN_CAPACITY = 16;
/** log2 of the slots in a chunk: 4,096 slots, 52 KB (a table of 1,000,000 ids is ~320 chunks). */
const CHUNK_BITS = 12;
const CHUNK_SLOTS = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK_SLOTS - 1;
/** Three 32-bit words of key and a byte of code. */
const BYTES_PER_SLOT = 13;
const TWO_POW_32 = 4294967296;

/**
 * A compact map from item id to a small code (0-255), for millions of ids.
 *
 * Ids are not stored: each is reduced to 96 bits of its MurmurHash3
 * (x86, 128-bit variant, over the UTF-16 code units; computed without
 * allocating). Two different ids share a key with a probability of about
 * n² / 2⁹⁷ (4·10⁻¹⁸ for a million ids). A key takes 12 bytes and its code one,
 * in open-addressing tables (linear probing) of typed arrays, outside the V8
 * heap, so V8's heap growing factor does not multiply them.
 *
 * Memory is what a million-line batch is about (bench `batch-rss`):
 *
 * - The ids are spread over 64 tables by 6 bits of the key, and each grows
 *   on its own. A growing table holds its old and its new arrays for a
 *   moment: 1/64 of the index, not a second copy of all of it.
 * - A table grows by half when it is 80 % full (not doubled at half full): 13
 *   bytes a slot at 53–80 % load is 16–25 bytes an id, 17 MB for 1,000,000
 *   ids (a `Map<string, number>` of the same ids: ~130 MB). 13 bytes is the
 *   floor for a 96-bit key and a code; the rest is the free slots that keep
 *   probing short.
 * - Large tables are made of equal chunks, which a growing table hands to the
 *   next one (see {@link ChunkPool}): the process does not keep freed arrays.
 */
export class IdTable {
  readonly #segments: Segment[] = [];
  #size = 0;
  #lastId: string | undefined;
  #lastKey: [number, number, number] = [0, 0, 0];

  constructor(initialCapacity = 1024) {
    const perSegment = Math.ceil(Math.max(0, initialCapacity) / SEGMENTS / MAX_LOAD);
    const pool = new ChunkPool();
    for (let i = 0; i < SEGMENTS; i++) this.#segments.push(new Segment(Math.max(MIN_CAPACITY, perSegment), pool));
  }

  /** Ids in the table. */
  get size(): number {
    return this.#size;
  }

  /** Bytes held by the table's arrays. */
  get byteLength(): number {
    let slots = 0;
    for (const segment of this.#segments) slots += segment.capacity;
    return slots * BYTES_PER_SLOT;
  }

  /** The code stored for `id`, or 0 when it is absent. */
  get(id: string): number {
    const [a, b, c] = this.#key(id);
    const segment = this.#segment(c);
    return segment.code(segment.find(a, b, c));
  }

  has(id: string): boolean {
    return this.get(id) !== 0;
  }

  /** Stores `code` (1-255) for `id`. Returns the code it replaced (0 when new). */
  set(id: string, code: number): number {
    if (!Number.isInteger(code) || code < 1 || code > 255) {
      throw new RangeError(`Expected \`code\` to be an integer in 1..255, got \`${String(code)}\``);
    }
    const [a, b, c] = this.#key(id);
    const segment = this.#segment(c);
    let slot = segment.find(a, b, c);
    const previous = segment.code(slot);
    if (previous === 0) {
      if (segment.size + 1 > segment.capacity * MAX_LOAD) {
        segment.grow();
        slot = segment.find(a, b, c);
      }
      segment.put(slot, a, b, c, code);
      this.#size++;
    } else {
      segment.setCode(slot, code);
    }
    return previous;
  }

  /** Sets the bits of `mask` in the code of `id` (adding it when absent). Returns the code it had. */
  mark(id: string, mask: number): number {
    const previous = this.get(id);
    if ((previous & mask) !== mask) this.set(id, previous | mask);
    return previous;
  }

  /** The key of `id`; the last one is cached, as callers ask get → set of one id in a row. */
  #key(id: string): [number, number, number] {
    if (id !== this.#lastId) {
      this.#lastKey = keyOf(id);
      this.#lastId = id;
    }
    return this.#lastKey;
  }

  #segment(c: number): Segment {
    return this.#segments[c >>> (32 - SEGMENT_BITS)] as Segment;
  }
}

/**
 * Chunks that a grown table let go of, for the next table that grows. Past
 * {@link CHUNK_SLOTS} slots a table is made of chunks of that many slots, one
 * `ArrayBuffer` each (12-byte keys, then the codes; 0: empty), all the same
 * size, so they are reused as they are. Left to the garbage collector, the
 * arrays of grown tables are freed late (at a full collection) and in sizes
 * too small for the next, larger request: the allocator keeps them, and the
 * process's RSS with them (measured: ~7–10 MB more after reading back a results
 * file of 500,000 ids).
 */
class ChunkPool {
  readonly #free: Array<[Uint32Array, Uint8Array]> = [];

  take(): [Uint32Array, Uint8Array] {
    const chunk = this.#free.pop();
    if (chunk) {
      chunk[1].fill(0);
      return chunk;
    }
    return newChunk(CHUNK_SLOTS);
  }

  give(keys: Uint32Array, codes: Uint8Array): void {
    if (codes.length === CHUNK_SLOTS) this.#free.push([keys, codes]);
  }
}

function newChunk(slots: number): [Uint32Array, Uint8Array] {
  const buffer = new ArrayBuffer(slots * BYTES_PER_SLOT);
  return [new Uint32Array(buffer, 0, slots * 3), new Uint8Array(buffer, slots * 12, slots)];
}

/** One open-addressing table, in chunks of {@link CHUNK_SLOTS} slots once it is that large. */
class Segment {
  readonly #pool: ChunkPool;
  #keys: Uint32Array[] = [];
  #codes: Uint8Array[] = [];
  capacity = 0;
  size = 0;

  constructor(capacity: number, pool: ChunkPool) {
    this.#pool = pool;
    this.#allocate(capacity);
  }

  code(slot: number): number {
    return (this.#codes[slot >>> CHUNK_BITS] as Uint8Array)[slot & CHUNK_MASK] as number;
  }

  setCode(slot: number, code: number): void {
    (this.#codes[slot >>> CHUNK_BITS] as Uint8Array)[slot & CHUNK_MASK] = code;
  }

  /** The slot holding key (a, b, c), or the empty slot where it would go. */
  find(a: number, b: number, c: number): number {
    const capacity = this.capacity;
    // The home slot is `a` scaled to the capacity (any capacity, not only powers of two).
    let slot = Math.floor((a / TWO_POW_32) * capacity);
    for (;;) {
      const chunk = slot >>> CHUNK_BITS;
      const i = slot & CHUNK_MASK;
      if ((this.#codes[chunk] as Uint8Array)[i] === 0) return slot;
      const keys = this.#keys[chunk] as Uint32Array;
      const k = i * 3;
      if (keys[k] === a && keys[k + 1] === b && keys[k + 2] === c) return slot;
      slot = slot + 1 === capacity ? 0 : slot + 1;
    }
  }

  put(slot: number, a: number, b: number, c: number, code: number): void {
    const chunk = slot >>> CHUNK_BITS;
    const i = slot & CHUNK_MASK;
    const keys = this.#keys[chunk] as Uint32Array;
    keys[i * 3] = a;
    keys[i * 3 + 1] = b;
    keys[i * 3 + 2] = c;
    (this.#codes[chunk] as Uint8Array)[i] = code;
    this.size++;
  }

  grow(): void {
    const oldKeys = this.#keys;
    const oldCodes = this.#codes;
    this.#allocate(Math.ceil(this.capacity * GROWTH));
    this.size = 0;
    for (let chunk = 0; chunk < oldCodes.length; chunk++) {
      const keys = oldKeys[chunk] as Uint32Array;
      const codes = oldCodes[chunk] as Uint8Array;
      for (let i = 0; i < codes.length; i++) {
        const code = codes[i] as number;
        if (code === 0) continue;
        const a = keys[i * 3] as number;
        const b = keys[i * 3 + 1] as number;
        const c = keys[i * 3 + 2] as number;
        this.put(this.find(a, b, c), a, b, c, code);
      }
      this.#pool.give(keys, codes);
    }
  }

  /** Fresh, empty arrays for at least `capacity` slots (whole chunks past one chunk). */
  #allocate(capacity: number): void {
    this.capacity = capacity <= CHUNK_SLOTS ? capacity : Math.ceil(capacity / CHUNK_SLOTS) * CHUNK_SLOTS;
    this.#keys = [];
    this.#codes = [];
    for (let first = 0; first < this.capacity; first += CHUNK_SLOTS) {
      const slots = this.capacity - first;
      const [keys, codes] = slots >= CHUNK_SLOTS ? this.#pool.take() : newChunk(slots);
      this.#keys.push(keys);
      this.#codes.push(codes);
    }
  }
}

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Two UTF-16 code units as one 32-bit word. */
function word(id: string, w: number): number {
  const i = w * 2;
  return (id.charCodeAt(i) | ((i + 1 < id.length ? id.charCodeAt(i + 1) : 0) << 16)) | 0;
}

/** 96 bits of MurmurHash3_x86_128 of `id` (words of two code units; seed 0). Allocation-free apart from the result. */
function keyOf(id: string): [number, number, number] {
  const words = (id.length + 1) >>> 1;
  let h1 = 0;
  let h2 = 0;
  let h3 = 0;
  let h4 = 0;
  const blocks = words >>> 2;
  for (let b = 0; b < blocks; b++) {
    let k1 = word(id, b * 4);
    let k2 = word(id, b * 4 + 1);
    let k3 = word(id, b * 4 + 2);
    let k4 = word(id, b * 4 + 3);
    k1 = Math.imul(rotl(Math.imul(k1, C1), 15), C2);
    h1 ^= k1;
    h1 = (Math.imul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    k2 = Math.imul(rotl(Math.imul(k2, C2), 16), C3);
    h2 ^= k2;
    h2 = (Math.imul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    k3 = Math.imul(rotl(Math.imul(k3, C3), 17), C4);
    h3 ^= k3;
    h3 = (Math.imul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    k4 = Math.imul(rotl(Math.imul(k4, C4), 18), C1);
    h4 ^= k4;
    h4 = (Math.imul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
  }
  const tail = words & 3;
  const base = blocks * 4;
  if (tail >= 3) h3 ^= Math.imul(rotl(Math.imul(word(id, base + 2), C3), 17), C4);
  if (tail >= 2) h2 ^= Math.imul(rotl(Math.imul(word(id, base + 1), C2), 16), C3);
  if (tail >= 1) h1 ^= Math.imul(rotl(Math.imul(word(id, base), C1), 15), C2);
  const len = id.length * 2;
  h1 ^= len;
  h2 ^= len;
  h3 ^= len;
  h4 ^= len;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h3 = fmix(h3);
  h4 = fmix(h4);
  h1 = (h1 + h2 + h3 + h4) >>> 0;
  h2 = (h2 + h1) >>> 0;
  h3 = (h3 + h1) >>> 0;
  return [h1, h2, h3];
}
