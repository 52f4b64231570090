/**
 * Which parameters can change a job's price, per endpoint: the cache key of
 * `price-calculation` answers. Pure; tested with a table.
 *
 * The price drivers come from the pricing page (`modelbeam-api.md` §2.4):
 * images by resolution × steps × model, video by resolution, frames and
 * steps, TTS by characters, transcription by media duration, OCR by output
 * characters, embeddings by tokens, upscale and background removal by input
 * size. The key leaves out only the parameters that the page says cannot
 * matter (the prompt text of image and video jobs, the seed, the webhook URL);
 * everything else stays in, so two lines share a key only when the API must
 * price them the same. TTS keeps the text's length instead of the text.
 */

/** Never price drivers, on any endpoint. */
const NEVER = ['webhook_url'];

/** Parameters left out of the key, by endpoint (in addition to {@link NEVER}). */
const NOT_PRICED: Readonly<Record<string, readonly string[]>> = {
  txt2img: ['prompt', 'negative_prompt', 'seed'],
  img2img: ['prompt', 'negative_prompt', 'seed'],
  txt2video: ['prompt', 'negative_prompt', 'seed'],
  img2video: ['prompt', 'negative_prompt', 'seed'],
  aud2video: ['prompt', 'negative_prompt', 'seed'],
};

/** Parameters replaced by their length in the key (the price counts characters, not which ones). */
const BY_LENGTH: Readonly<Record<string, readonly string[]>> = {
  txt2audio: ['text'],
};

/** A JSON rendering with sorted keys; `undefined` when `value` holds something that is not plain data (a Blob, a stream). */
function stableJson(value: unknown): string | undefined {
  if (value === null || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) {
    const parts: string[] = [];
    for (const v of value) {
      const s = stableJson(v);
      if (s === undefined) return undefined;
      parts.push(s);
    }
    return `[${parts.join(',')}]`;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const parts: string[] = [];
    for (const key of Object.keys(value as object).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v === undefined) continue;
      const s = stableJson(v);
      if (s === undefined) return undefined;
      parts.push(`${JSON.stringify(key)}:${s}`);
    }
    return `{${parts.join(',')}}`;
  }
  return undefined;
}

/**
 * The key under which the price of (`endpoint`, `params`) is cached: equal keys mean an equal price.
 * `undefined` when the parameters hold a value that cannot be keyed (a Buffer, a Blob, a stream): such a
 * job is priced on its own.
 */
export function priceKey(endpoint: string, params: Readonly<Record<string, unknown>>): string | undefined {
  const drop = new Set([...NEVER, ...(NOT_PRICED[endpoint] ?? [])]);
  const lengths = new Set(BY_LENGTH[endpoint] ?? []);
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params)) {
    if (drop.has(key) || value === undefined) continue;
    // Both counts: whether the API counts UTF-16 units or code points is not documented.
    kept[key] = lengths.has(key) && typeof value === 'string' ? { length: value.length, codePoints: [...value].length } : value;
  }
  const json = stableJson(kept);
  return json === undefined ? undefined : `${endpoint} ${json}`;
}
