/**
 * When to poll a job, from what has been observed. Pure: no clock, no I/O;
 * every time is passed in.
 *
 * - {@link DurationEstimator} learns, per endpoint + model, how long jobs
 *   take (submit response → done). It tracks a high quantile (95 % by
 *   default) of the duration in log space from what each first poll found
 *   (done: a "hit"; not done: a "miss", with the progress-based prediction),
 *   and from exact durations (webhooks). The estimate never drops below
 *   recent hard evidence (the largest recent lower bound), and while it sits
 *   well above that evidence, one job in `probeEvery` polls early to find out
 *   whether jobs got faster. A key with nothing learned sends one "scout"
 *   job first; the others wait for what it learns. A miss raises the
 *   estimate from its own evidence (its elapsed time, its prediction), never
 *   by compounding on the current estimate: jobs planned on the same estimate
 *   miss together, and must not multiply it once each.
 * - {@link firstPollDelay} and {@link nextPollDelay} turn the estimate and
 *   the job's reported progress into the next poll time: the first poll near
 *   the expected finish, later ones at the predicted finish or backing off,
 *   and never more than `maxIntervalMs` apart, whatever the estimate.
 */

export interface PlannerConfig {
  /** No two polls of a job closer than this, and no first poll sooner. */
  minIntervalMs: number;
  /** No job waits longer than this for its first poll or between two polls (safety-net polls: `overdueFactor` times longer). */
  maxIntervalMs: number;
  /** With webhooks: a job is overdue, and polled as a safety net, after `overdueFactor` × its expected duration. */
  overdueFactor: number;
}

export interface EstimatorOptions {
  /** Expected duration before anything is learned. */
  initialMs: number;
  /** Bounds of any estimate. @default 1, 24 h */
  minMs?: number;
  maxMs?: number;
  /** The quantile tracked. @default 0.95 */
  quantile?: number;
  /** How many recent observations keep their evidence. @default 100 */
  memory?: number;
  /** While uncertain, one first poll in this many is an early probe. @default 4 */
  probeEvery?: number;
}

/** What one job taught. */
export type DurationObservation =
  /** The exact duration (from a webhook's arrival, say). */
  | { kind: 'exact'; durationMs: number }
  /**
   * What the first poll found. `elapsedMs`: submit → poll dispatch;
   * `plannedMs`: the delay it was planned for; `predictedMs`: the total
   * duration predicted from the progress a miss reported.
   */
  | { kind: 'first-poll'; done: boolean; elapsedMs: number; plannedMs: number; probe: boolean; predictedMs?: number };

export interface FirstPollChoice {
  delayMs: number;
  /** An early probe (polls at about half the estimate). */
  probe: boolean;
  /** The first job of an unlearned key. */
  scout: boolean;
}

interface KeyState {
  target: number | undefined;
  n: number;
  evidence: number[];
  next: number;
  planned: number;
  scouting: boolean;
}

/** A hit that came this much later than planned says nothing about the estimate. */
const CONCLUSIVE = 1.15;
/** Headroom above the hard evidence. */
const HEADROOM = 1.05;

export class DurationEstimator {
  readonly #keys = new Map<string, KeyState>();
  readonly #initial: number;
  readonly #min: number;
  readonly #max: number;
  readonly #q: number;
  readonly #memory: number;
  readonly #probeEvery: number;

  constructor(options: EstimatorOptions) {
    this.#initial = options.initialMs;
    this.#min = options.minMs ?? 1;
    this.#max = options.maxMs ?? 86_400_000;
    this.#q = options.quantile ?? 0.95;
    this.#memory = options.memory ?? 100;
    this.#probeEvery = options.probeEvery ?? 4;
  }

  /** Whether anything has been learned for `endpoint` (+ `model`), or for the endpoint as a whole. */
  learned(endpoint: string, model?: string): boolean {
    return this.#resolve(endpoint, model)?.target !== undefined;
  }

  /** The expected duration (the tracked quantile), in ms. */
  expected(endpoint: string, model?: string): number {
    const state = this.#resolve(endpoint, model);
    if (!state || state.target === undefined) return this.#clamp(this.#initial);
    return this.#clamp(Math.max(state.target, floorOf(state) * HEADROOM));
  }

  /** The early-probe delay for a job planned as a probe. */
  probeDelay(endpoint: string, model?: string): number {
    const state = this.#resolve(endpoint, model);
    const expected = this.expected(endpoint, model);
    return this.#clamp(Math.max(state ? floorOf(state) * HEADROOM : 0, expected * 0.5));
  }

  /** Chooses how a new job's first poll is planned. Advances the probe rotation. */
  choose(endpoint: string, model?: string): FirstPollChoice {
    const state = this.#state(keyOf(endpoint, model));
    const expected = this.expected(endpoint, model);
    if (!this.learned(endpoint, model)) {
      if (!state.scouting) {
        state.scouting = true;
        return { delayMs: expected, probe: false, scout: true };
      }
      return { delayMs: this.#clamp(expected * 2), probe: false, scout: false };
    }
    const turn = state.planned++ % this.#probeEvery === 0;
    if (turn && this.#uncertain(endpoint, model)) {
      const delayMs = this.probeDelay(endpoint, model);
      if (delayMs < expected * 0.9) return { delayMs, probe: true, scout: false };
    }
    return { delayMs: expected, probe: false, scout: false };
  }

  /** Lets another job scout an unlearned key (the scout was abandoned). */
  releaseScout(endpoint: string, model?: string): void {
    const state = this.#keys.get(keyOf(endpoint, model));
    if (state) state.scouting = false;
  }

  /** Learns from one job, for its key and for its endpoint as a whole. */
  observe(endpoint: string, model: string | undefined, observation: DurationObservation): void {
    this.#update(this.#state(keyOf(endpoint, model)), observation);
    if (model !== undefined) this.#update(this.#state(keyOf(endpoint, undefined)), observation);
  }

  /** Expected duration and observation count per key (`endpoint` or `endpoint model`). */
  snapshot(): Record<string, { expectedMs: number; observations: number }> {
    const out: Record<string, { expectedMs: number; observations: number }> = {};
    for (const [key, state] of this.#keys) {
      if (state.target === undefined) continue;
      const [endpoint, model] = key.split('\u0000') as [string, string];
      out[model === '*' ? endpoint : `${endpoint} ${model}`] = {
        expectedMs: Math.round(this.expected(endpoint, model === '*' ? undefined : model)),
        observations: state.n,
      };
    }
    return out;
  }

  #uncertain(endpoint: string, model?: string): boolean {
    const state = this.#resolve(endpoint, model);
    if (!state || state.target === undefined) return false;
    const floor = floorOf(state);
    return floor === 0 || this.expected(endpoint, model) > floor * 1.5;
  }

  #resolve(endpoint: string, model: string | undefined): KeyState | undefined {
    const exact = this.#keys.get(keyOf(endpoint, model));
    if (exact?.target !== undefined || model === undefined) return exact;
    const general = this.#keys.get(keyOf(endpoint, undefined));
    return general?.target !== undefined ? general : exact;
  }

  #state(key: string): KeyState {
    let state = this.#keys.get(key);
    if (!state) {
      state = { target: undefined, n: 0, evidence: [], next: 0, planned: 0, scouting: false };
      this.#keys.set(key, state);
    }
    return state;
  }

  #push(state: KeyState, value: number): void {
    if (state.evidence.length < this.#memory) state.evidence.push(value);
    else state.evidence[state.next] = value;
    state.next = (state.next + 1) % this.#memory;
  }

  #update(state: KeyState, o: DurationObservation): void {
    state.scouting = false;
    const eta = Math.max(0.2, 1 / Math.sqrt(state.n + 1));
    const down = Math.exp(-eta * (1 - this.#q));
    const up = Math.exp(eta * this.#q);
    const t = state.target;
    if (o.kind === 'exact') {
      const d = o.durationMs;
      if (!(d >= 0)) return;
      this.#push(state, d);
      state.target = t === undefined ? d * 1.1 : d <= t ? t * down : Math.max(t * up, d * HEADROOM);
    } else if (o.done) {
      this.#push(state, 0);
      const conclusive = o.elapsedMs <= o.plannedMs * CONCLUSIVE;
      if (!conclusive) return;
      if (t === undefined) state.target = o.elapsedMs;
      else if (o.probe) state.target = Math.min(t, Math.max(t * 0.7, o.elapsedMs * 1.2));
      else state.target = t * down;
    } else {
      const predicted = o.predictedMs !== undefined && o.predictedMs > o.elapsedMs ? Math.min(o.predictedMs, o.elapsedMs * 4) : undefined;
      this.#push(state, predicted ?? o.elapsedMs);
      if (t === undefined) state.target = Math.max(o.elapsedMs * 1.5, (predicted ?? 0) * HEADROOM);
      else if (o.probe) state.target = Math.max(t, (predicted ?? 0) * HEADROOM);
      // A miss says "longer than elapsed": the step up is taken from that evidence, not from the current
      // target. Jobs whose first polls were planned on the same (low) estimate miss together; stepping from
      // the target would multiply it once per job (20 misses: ×500), stepping from the evidence cannot
      // raise it above the longest elapsed time × `up`.
      else state.target = Math.max(t, o.elapsedMs * up, (predicted ?? 0) * HEADROOM);
    }
    state.target = this.#clamp(state.target ?? this.#initial);
    state.n++;
  }

  #clamp(ms: number): number {
    return Math.min(this.#max, Math.max(this.#min, ms));
  }
}

function keyOf(endpoint: string, model: string | undefined): string {
  return `${endpoint}\u0000${model ?? '*'}`;
}

function floorOf(state: KeyState): number {
  let floor = 0;
  for (const v of state.evidence) if (v > floor) floor = v;
  return floor;
}

// ------------------------------------------------------------------ plans

/** One progress reading of a job. */
export interface ProgressSample {
  /** When it was true (the poll's dispatch time). */
  at: number;
  /** 0–100. */
  progress: number;
}

/**
 * Predicts how long a running job still needs, from its progress: the rate
 * between the two latest distinct readings, else the average rate since
 * submission (which counts the queueing time as progress, so it errs late:
 * the safe side for polling). Undefined without usable progress.
 */
export function predictRemaining(samples: readonly ProgressSample[], now: number, submittedAt: number): number | undefined {
  const last = samples.at(-1);
  if (!last || !(last.progress > 0) || last.progress >= 100) return undefined;
  let prev: ProgressSample | undefined;
  for (let i = samples.length - 2; i >= 0; i--) {
    const s = samples[i];
    if (s && s.progress < last.progress && s.at < last.at) {
      prev = s;
      break;
    }
  }
  let remaining: number;
  if (prev && prev.progress > 0) {
    const rate = (last.progress - prev.progress) / (last.at - prev.at);
    remaining = (100 - last.progress) / rate - (now - last.at);
  } else {
    const total = (last.at - submittedAt) / (last.progress / 100);
    remaining = total - (now - submittedAt);
  }
  return Number.isFinite(remaining) ? Math.max(0, remaining) : undefined;
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/**
 * Delay from submission to a job's first poll: at the expected finish, and
 * never later than `maxIntervalMs` (learned or not: a job is never left
 * unpolled longer than that, whatever the estimate says). With webhooks
 * (`safety`), only once the job is overdue, `overdueFactor` times later, and
 * capped `overdueFactor` times higher.
 */
export function firstPollDelay(expectedMs: number, mode: 'poll' | 'safety', config: PlannerConfig): number {
  if (mode === 'safety') {
    return clamp(expectedMs * config.overdueFactor, config.minIntervalMs, Math.max(config.minIntervalMs, config.maxIntervalMs * config.overdueFactor));
  }
  return clamp(expectedMs, config.minIntervalMs, Math.max(config.minIntervalMs, config.maxIntervalMs));
}

export interface FollowUpInput {
  /** When the last poll was answered (now). */
  now: number;
  submittedAt: number;
  expectedMs: number;
  samples: readonly ProgressSample[];
  mode: 'poll' | 'safety';
}

/**
 * Delay from now to the next poll of a job the last poll found unfinished:
 * at the finish its progress predicts (plus 15 %), else backing off
 * geometrically (the next poll at 1.5 × the time since submission, and not
 * before the expected finish). With webhooks, `overdueFactor` times slower.
 */
export function nextPollDelay(input: FollowUpInput, config: PlannerConfig): number {
  const elapsed = Math.max(0, input.now - input.submittedAt);
  const remaining = predictRemaining(input.samples, input.now, input.submittedAt);
  let wait = remaining !== undefined ? remaining * 1.15 : Math.max(input.expectedMs - elapsed, elapsed * 0.5);
  let max = config.maxIntervalMs;
  if (input.mode === 'safety') {
    wait *= config.overdueFactor;
    max *= config.overdueFactor;
  }
  return clamp(wait, config.minIntervalMs, Math.max(config.minIntervalMs, max));
}

/** The total duration a miss predicts (elapsed + remaining), if its progress tells. */
export function predictTotal(samples: readonly ProgressSample[], now: number, submittedAt: number): number | undefined {
  const remaining = predictRemaining(samples, now, submittedAt);
  return remaining === undefined ? undefined : now - submittedAt + remaining;
}
