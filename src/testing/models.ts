/**
 * The fake model registry served by `GET /models`, and its Laravel paginator.
 */

export interface FakeModelLimits {
  min_width?: number;
  max_width?: number;
  min_height?: number;
  max_height?: number;
  min_steps?: number;
  max_steps?: number;
  resolution_step?: number;
  [key: string]: number | undefined;
}

export interface FakeModel {
  name: string;
  slug: string;
  inference_types: string[];
  info: {
    limits: FakeModelLimits;
    features: Record<string, boolean>;
    defaults: Record<string, number | string | null>;
  };
  loras: { display_name: string; name: string }[] | null;
  languages: string[] | null;
}

const imageFeatures = (guidance: boolean, negative: boolean): Record<string, boolean> => ({
  supports_steps: true,
  supports_guidance: guidance,
  supports_negative_prompt: negative,
  supports_custom_output_size: true,
  supports_last_frame: false,
});

const noFeatures: Record<string, boolean> = {
  supports_steps: false,
  supports_guidance: false,
  supports_negative_prompt: false,
  supports_custom_output_size: false,
  supports_last_frame: false,
};

export const FAKE_MODELS: readonly FakeModel[] = [
  {
    name: 'FLUX.1 schnell',
    slug: 'Flux1schnell',
    inference_types: ['txt2img'],
    info: {
      limits: { min_width: 256, max_width: 2048, min_height: 256, max_height: 2048, min_steps: 1, max_steps: 10, resolution_step: 128 },
      features: imageFeatures(false, false),
      defaults: { width: 1024, height: 1024, steps: 4, negative_prompt: null },
    },
    loras: null,
    languages: null,
  },
  {
    name: 'Z-Image Turbo INT8',
    slug: 'ZImageTurbo_INT8',
    inference_types: ['txt2img'],
    info: {
      limits: { min_width: 256, max_width: 2048, min_height: 256, max_height: 2048, min_steps: 1, max_steps: 16, resolution_step: 64 },
      features: imageFeatures(true, true),
      defaults: { width: 1024, height: 1024, steps: 8, negative_prompt: '' },
    },
    loras: [{ display_name: 'Film grain', name: 'film_grain' }],
    languages: null,
  },
  {
    name: 'FLUX.2 Klein 4B',
    slug: 'Flux_2_Klein_4B_BF16',
    inference_types: ['img2img'],
    info: {
      limits: { min_width: 256, max_width: 2048, min_height: 256, max_height: 2048, min_steps: 1, max_steps: 50, resolution_step: 16 },
      features: imageFeatures(true, true),
      defaults: { width: 1024, height: 1024, steps: 4, negative_prompt: '' },
    },
    loras: null,
    languages: null,
  },
  {
    name: 'BGE M3',
    slug: 'Bge_M3_FP16',
    inference_types: ['txt2embedding'],
    info: { limits: { max_input_tokens: 8192, max_total_tokens: 300_000 }, features: noFeatures, defaults: {} },
    loras: null,
    languages: null,
  },
  {
    name: 'Kokoro',
    slug: 'Kokoro',
    inference_types: ['txt2audio'],
    info: { limits: { min_speed: 0.5, max_speed: 2 }, features: noFeatures, defaults: { speed: 1, format: 'mp3', sample_rate: 44100 } },
    loras: null,
    languages: ['en-us', 'en-gb', 'es', 'fr-fr', 'ja', 'zh'],
  },
  {
    name: 'Whisper Large V3',
    slug: 'WhisperLargeV3',
    inference_types: ['transcribe', 'aud2txt', 'vid2txt', 'videofile2txt', 'audiofile2txt'],
    info: { limits: {}, features: noFeatures, defaults: {} },
    loras: null,
    languages: null,
  },
  {
    name: 'Nanonets OCR S',
    slug: 'Nanonets_Ocr_S_F16',
    inference_types: ['img2txt'],
    info: { limits: {}, features: noFeatures, defaults: { format: 'text' } },
    loras: null,
    languages: null,
  },
  {
    name: 'LTX-Video 13B 0.9.8 Distilled',
    slug: 'Ltxv_13B_0_9_8_Distilled_FP8',
    inference_types: ['txt2video', 'img2video'],
    info: {
      limits: { min_width: 256, max_width: 1280, min_height: 256, max_height: 1280, min_steps: 1, max_steps: 50, min_frames: 1, max_frames: 120, resolution_step: 32 },
      features: { ...imageFeatures(true, true), supports_last_frame: true },
      defaults: { width: 768, height: 512, steps: 8, frames: 97, fps: 24, negative_prompt: '' },
    },
    loras: null,
    languages: null,
  },
  {
    name: 'LTX-2 19B Distilled',
    slug: 'Ltx2_19B_Dist_FP8',
    inference_types: ['aud2video'],
    info: {
      limits: { min_width: 256, max_width: 1280, min_height: 256, max_height: 1280, min_steps: 1, max_steps: 50, min_frames: 1, max_frames: 120, resolution_step: 32 },
      features: { ...imageFeatures(true, true), supports_last_frame: true },
      defaults: { width: 768, height: 512, steps: 8, frames: 97, fps: 24, negative_prompt: '' },
    },
    loras: null,
    languages: null,
  },
  {
    name: 'ACE-Step 1.5 Turbo',
    slug: 'AceStep_1_5_Turbo',
    inference_types: ['txt2music'],
    info: { limits: { min_duration: 10, max_duration: 600, min_steps: 1, max_steps: 100 }, features: noFeatures, defaults: { steps: 8, format: 'flac' } },
    loras: null,
    languages: ['en', 'es', 'de', 'fr', 'ja'],
  },
  {
    name: 'Real-ESRGAN x4',
    slug: 'RealESRGAN_x4',
    inference_types: ['img_upscale'],
    info: { limits: {}, features: noFeatures, defaults: {} },
    loras: null,
    languages: null,
  },
  {
    name: 'BEN2',
    slug: 'Ben2',
    inference_types: ['img_rmbg'],
    info: { limits: {}, features: noFeatures, defaults: {} },
    loras: null,
    languages: null,
  },
];

const BY_SLUG = new Map(FAKE_MODELS.map((m) => [m.slug, m]));

export function findModel(slug: string): FakeModel | undefined {
  return BY_SLUG.get(slug);
}

export interface Paginated<T> {
  data: T[];
  links: { first: string; last: string; prev: string | null; next: string | null };
  meta: {
    current_page: number;
    from: number | null;
    last_page: number;
    path: string;
    per_page: number;
    to: number | null;
    total: number;
  };
}

function positiveInt(raw: string | null, fallback: number, max: number): number {
  if (raw === null || !/^\d+$/.test(raw)) return fallback;
  const n = Number(raw);
  return n >= 1 ? Math.min(n, max) : fallback;
}

/**
 * `GET /models?per_page=&page=&filter[inference_types]=a,b` as a Laravel length-aware paginator.
 * Malformed `page`/`per_page` fall back to 1/25; `per_page` is capped at 100.
 */
export function listModels(query: URLSearchParams, path: string): Paginated<FakeModel> {
  const filter = query.get('filter[inference_types]');
  const types = filter
    ? new Set(
        filter
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean),
      )
    : undefined;
  const all = types ? FAKE_MODELS.filter((m) => m.inference_types.some((t) => types.has(t))) : [...FAKE_MODELS];
  const perPage = positiveInt(query.get('per_page'), 25, 100);
  const page = positiveInt(query.get('page'), 1, Number.MAX_SAFE_INTEGER);
  const lastPage = Math.max(1, Math.ceil(all.length / perPage));
  const start = (page - 1) * perPage;
  const data = all.slice(start, start + perPage);
  const link = (p: number): string => {
    const q = new URLSearchParams();
    if (filter) q.set('filter[inference_types]', filter);
    q.set('per_page', String(perPage));
    q.set('page', String(p));
    return `${path}?${q.toString()}`;
  };
  return {
    data,
    links: {
      first: link(1),
      last: link(lastPage),
      prev: page > 1 ? link(page - 1) : null,
      next: page < lastPage ? link(page + 1) : null,
    },
    meta: {
      current_page: page,
      from: data.length > 0 ? start + 1 : null,
      last_page: lastPage,
      path,
      per_page: perPage,
      to: data.length > 0 ? start + data.length : null,
      total: all.length,
    },
  };
}
