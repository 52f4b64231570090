import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FormData } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBody, prepareParams, sniffType } from '../src/modelbeam/body.js';
import { isValidEndpointName, unknownEndpointErrors, validateParams } from '../src/modelbeam/endpoints.js';

const img = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  prompt: 'a red fox',
  model: 'Flux1schnell',
  width: 512,
  height: 512,
  steps: 4,
  ...over,
});

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');

describe('validateParams: documented ranges, checked locally', () => {
  it.each([
    ['valid txt2img', 'txt2img', img(), undefined],
    ['width below range', 'txt2img', img({ width: 100 }), { width: ['The width field must be between 256 and 2048.'] }],
    ['height above range', 'txt2img', img({ height: 4096 }), { height: ['The height field must be between 256 and 2048.'] }],
    ['steps 0', 'txt2img', img({ steps: 0 }), { steps: ['The steps field must be between 1 and 50.'] }],
    ['steps not integer', 'txt2img', img({ steps: 2.5 }), { steps: ['The steps field must be an integer.'] }],
    ['numeric strings are fine', 'txt2img', img({ width: '512', steps: '4' }), undefined],
    ['guidance 21', 'txt2img', img({ guidance: 21 }), { guidance: ['The guidance field must be between 0 and 20.'] }],
    ['missing prompt and model', 'txt2img', { width: 512, height: 512, steps: 4 }, { prompt: ['The prompt field is required.'], model: ['The model field is required.'] }],
    ['blank prompt', 'txt2img', img({ prompt: '   ' }), { prompt: ['The prompt field is required.'] }],
    ['bad loras', 'txt2img', img({ loras: [{ name: 'x' }] }), { loras: ['Every item of the loras field must be {name: string, weight: number}.'] }],
    ['good loras', 'txt2img', img({ loras: [{ name: 'film_grain', weight: 0.8 }] }), undefined],
    ['webhook_url not a URL', 'txt2img', img({ webhook_url: 'nope' }), { webhook_url: ['The webhook url field must be a valid URL.'] }],
    ['webhook_url too long', 'txt2img', img({ webhook_url: `https://x.io/${'a'.repeat(2048)}` }), { webhook_url: ['The webhook url field must not be greater than 2048 characters.'] }],
    ['img2img needs image or images', 'img2img', { prompt: 'p', model: 'm', steps: 4, seed: 1 }, { image: ['The image field is required when images is not present.'] }],
    ['img2img not both', 'img2img', { prompt: 'p', model: 'm', steps: 4, seed: 1, image: PNG, images: [PNG] }, { image: ['Send either image or images, not both.'] }],
    ['img2img image too big', 'img2img', { prompt: 'p', model: 'm', steps: 4, seed: 1, image: Buffer.alloc(10 * 1024 * 1024 + 1) }, { image: ['The image field must not be greater than 10240 kilobytes.'] }],
    ['img2img image a number', 'img2img', { prompt: 'p', model: 'm', steps: 4, seed: 1, image: 42 }, { image: ['The image field must be a file (a path, a Buffer, a Blob or a stream).'] }],
    ['txt2audio speed', 'txt2audio', { text: 'hi', model: 'Kokoro', lang: 'en-us', speed: 3, format: 'mp3', sample_rate: 44100 }, { speed: ['The speed field must be between 0.5 and 2.'] }],
    ['txt2audio format', 'txt2audio', { text: 'hi', model: 'Kokoro', lang: 'en-us', speed: 1, format: 'ogg', sample_rate: 44100 }, { format: ['The selected format is invalid (expected one of mp3, wav, flac).'] }],
    ['txt2embedding too many inputs', 'txt2embedding', { input: Array(2049).fill('x'), model: 'Bge_M3_FP16' }, { input: ['The input field must not have more than 2048 items.'] }],
    ['txt2embedding non-string item', 'txt2embedding', { input: ['a', 1], model: 'Bge_M3_FP16' }, { input: ['Every item of the input field must be a string.'] }],
    ['booleans the Laravel way', 'txt2embedding', { input: 'a', model: 'm', return_result_in_response: 'true' }, { return_result_in_response: ['The return result in response field must be true or false.'] }],
    ['transcribe needs exactly one source', 'transcribe', { include_ts: true, model: 'WhisperLargeV3' }, { source_url: ['Exactly one of source_url and source_file is required.'] }],
    ['transcribe both sources', 'transcribe', { include_ts: true, model: 'W', source_url: 'https://x.io/a', source_file: PNG }, { source_url: ['Exactly one of source_url and source_file is required.'] }],
    ['txt2music ranges', 'txt2music', { model: 'AceStep_1_5_Turbo', duration: 5, bpm: 400, time_signature: 5 }, {
      duration: ['The duration field must be between 10 and 600.'],
      bpm: ['The bpm field must be between 30 and 300.'],
      time_signature: ['The selected time signature is invalid (expected one of 2, 3, 4, 6).'],
    }],
    ['txt2video: sibling facts are not enforced as ranges', 'txt2video', { prompt: 'p', model: 'm', width: 5000, frames: 999 }, undefined],
    ['aud2video ranges', 'aud2video', { prompt: 'p', audio: PNG, model: 'm', width: 2000, height: 512, seed: 1, frames: 121 }, {
      width: ['The width field must be between 256 and 1280.'],
      frames: ['The frames field must be between 1 and 120.'],
    }],
    ['videos/replace width without height', 'videos/replace', { video: PNG, ref_image: PNG, model: 'Wan2_2_Animate', width: 512 }, { width: ['The width and height fields must be sent together.'] }],
    ['unknown endpoint: only shared checks', 'some-new-endpoint', { anything: 1 }, undefined],
    ['unknown fields pass through', 'txt2img', img({ brand_new_field: true }), undefined],
  ])('%s', (_name, endpoint, params, expected) => {
    expect(validateParams(endpoint, params)).toEqual(expected);
  });

  it('accepts endpoint paths and refuses anything else', () => {
    expect(isValidEndpointName('txt2img')).toBe(true);
    expect(isValidEndpointName('videos/replace')).toBe(true);
    expect(isValidEndpointName('img-upscale')).toBe(true);
    for (const bad of ['', '../balance', 'a?b=1', 'https://evil.example/x', '/txt2img', 'a//b', 42]) expect(isValidEndpointName(bad)).toBe(false);
  });
});

describe('unknown parameters and endpoints', () => {
  const base = { prompt: 'fox', model: 'Flux1schnell', width: 512, height: 512, steps: 4 };
  it.each([
    ['a typo of a field that is not given', { ...base, stpes: 8, steps: undefined }, { stpes: /did you mean `steps`/ }],
    ['a typo next to the field itself (two spellings: sent as is)', { ...base, widht: 640 }, undefined],
    ['an unknown field like nothing documented (the API may add some)', { ...base, style_preset: 'anime' }, undefined],
    ['a misspelt required field: the typo and the missing field', { ...base, promt: 'fox', prompt: undefined }, { promt: /did you mean `prompt`/, prompt: /required/ }],
  ] as const)('%s', (_name, params, expected) => {
    const clean = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
    const errors = validateParams('txt2img', clean);
    if (expected === undefined) expect(errors).toBeUndefined();
    else for (const [field, pattern] of Object.entries(expected)) expect(errors?.[field]?.[0]).toMatch(pattern);
  });

  it.each([
    ['txt2img', undefined],
    ['txt2imgg', /Unknown endpoint "txt2imgg" \(did you mean "txt2img"\?\); expected one of txt2img, /],
    ['nothing/like/this', /Unknown endpoint "nothing\/like\/this"; expected one of /],
  ] as const)('endpoint %s', (endpoint, pattern) => {
    const errors = unknownEndpointErrors(endpoint);
    if (pattern === undefined) expect(errors).toBeUndefined();
    else expect(errors?.['endpoint']?.[0]).toMatch(pattern);
  });
});

describe('bodies: JSON without files, multipart with them', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mb-params-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('sends JSON when no file is attached, keeping types', async () => {
    const prepared = await prepareParams('txt2img', img({ loras: [{ name: 'a', weight: 0.5 }], seed: -1 }), 1e6);
    const encoded = encodeBody(prepared);
    expect(encoded.headers['content-type']).toBe('application/json');
    expect(JSON.parse(encoded.body as string)).toEqual(img({ loras: [{ name: 'a', weight: 0.5 }], seed: -1 }));
  });

  it('sends multipart for files: Buffer, path, stream and named inputs; booleans as 1/0; objects as JSON', async () => {
    const path = join(dir, 'photo.png');
    await writeFile(path, PNG);
    const prepared = await prepareParams(
      'img2img',
      {
        image: path,
        prompt: 'p',
        model: 'm',
        steps: 4,
        seed: 7,
        loras: [{ name: 'a', weight: 1 }],
        flag: true,
        images_extra: undefined,
      },
      1e6,
    );
    expect(prepared.multipart).toBe(true);
    const form = encodeBody(prepared).body as FormData;
    expect(form).toBeInstanceOf(FormData);
    const file = form.get('image') as File;
    expect(file.name).toBe('photo.png');
    expect(file.type).toBe('image/png');
    expect(Buffer.from(await file.arrayBuffer())).toEqual(PNG);
    expect(form.get('steps')).toBe('4');
    expect(form.get('flag')).toBe('1');
    expect(form.get('loras')).toBe('[{"name":"a","weight":1}]');
    expect(form.has('images_extra')).toBe(false);

    // A second body from the same prepared params carries the same bytes (retries resend it).
    const again = encodeBody(prepared).body as FormData;
    expect(Buffer.from(await (again.get('image') as File).arrayBuffer())).toEqual(PNG);

    const streamed = await prepareParams('img2txt', { image: Readable.from([PNG.subarray(0, 4), PNG.subarray(4)]), model: 'm' }, 1e6);
    const sf = encodeBody(streamed).body as FormData;
    expect((sf.get('image') as File).name).toBe('image.png');
    expect(Buffer.from(await (sf.get('image') as File).arrayBuffer())).toEqual(PNG);

    const named = await prepareParams('img2txt', { image: { data: Buffer.from('hello'), filename: 'a.txt', contentType: 'text/plain' }, model: 'm' }, 1e6);
    const nf = (encodeBody(named).body as FormData).get('image') as File;
    expect([nf.name, nf.type]).toEqual(['a.txt', 'text/plain']);

    const many = await prepareParams('img2img', { images: [PNG, PNG], prompt: 'p', model: 'm', steps: 4, seed: 1 }, 1e6);
    expect((encodeBody(many).body as FormData).getAll('images[]')).toHaveLength(2);
  });

  it('refuses a stream larger than the upload cap', async () => {
    await expect(prepareParams('img2txt', { image: Readable.from([Buffer.alloc(64)]), model: 'm' }, 16)).rejects.toThrow(/larger than 16 bytes/);
  });

  it.each([
    ['89504e47', 'image/png'],
    ['ffd8ffe0', 'image/jpeg'],
    ['47494638', 'image/gif'],
    [Buffer.from('RIFF0000WEBP').toString('hex'), 'image/webp'],
    [Buffer.from('RIFF0000WAVE').toString('hex'), 'audio/wav'],
    [Buffer.from('fLaC').toString('hex'), 'audio/flac'],
    [Buffer.from('ID3').toString('hex'), 'audio/mpeg'],
    [Buffer.from('0000ftypisom').toString('hex'), 'video/mp4'],
    ['00000000', undefined],
  ])('sniffs %s as %s', (hex, type) => {
    expect(sniffType(Buffer.from(hex, 'hex'))).toBe(type);
  });
});
