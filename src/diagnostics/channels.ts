/**
 * The `node:diagnostics_channel` channels the scheduler and the client publish
 * their events on (how undici publishes its own): one named channel per event,
 * `modelbeam-scheduler:<source>:<event>`, e.g. `modelbeam-scheduler:scheduler:rateLimited`
 * or `modelbeam-scheduler:client:completed`. Each message is
 * `{ source, event }`: the emitting scheduler or client, and the event's
 * payload exactly as its `on()` listeners receive it.
 *
 * A message is built and published only while the channel has subscribers
 * (`channel.hasSubscribers`): nobody listening costs a map lookup per event.
 */
import { channel, type Channel } from 'node:diagnostics_channel';

/** The first part of every channel name. */
export const CHANNEL_PREFIX = 'modelbeam-scheduler';

/** Who publishes on a channel: a `RateLimitScheduler` or a `ModelBeamClient`. */
export type ChannelSource = 'scheduler' | 'client';

/** What every channel carries. */
export interface ChannelMessage<Source = unknown, Event = unknown> {
  /** The scheduler or client that emitted the event. */
  source: Source;
  /** The event's payload, the same object its `on()` listeners get. */
  event: Event;
}

/** The name of the channel of `event` from `source`, e.g. `modelbeam-scheduler:scheduler:queued`. */
export function channelName(source: ChannelSource, event: string): string {
  return `${CHANNEL_PREFIX}:${source}:${event}`;
}

/**
 * The channel of the spend (in USD) of submissions, for the metrics' spend
 * counter: `{ source, event: { amount, endpoint } }`. The batch runner
 * publishes each charged submission's price here when it prices submissions
 * (`maxSpend`); a client `spent` event would land on the same channel.
 */
export const SPEND_CHANNEL = channelName('client', 'spent');

/**
 * The channel of every HTTP answer the scheduler reads (any status, 429s and
 * 5xx included): `{ source, event: { id, attempt, status, latencyMs } }`. Not
 * an `on()` event: it exists for the request-latency histogram, so that a task
 * that returns no HTTP response publishes nothing.
 */
export const ANSWERED_CHANNEL = channelName('scheduler', 'answered');

/** What {@link ANSWERED_CHANNEL} carries. */
export interface AnsweredEvent {
  id: number;
  attempt: number;
  status: number;
  /** Time from dispatch to the answer. */
  latencyMs: number;
}

const answeredChannel = channel(ANSWERED_CHANNEL);

/** Publishes an answer on {@link ANSWERED_CHANNEL}, if anyone subscribes. */
export function publishAnswered(source: unknown, id: number, attempt: number, status: number, latencyMs: number): void {
  if (answeredChannel.hasSubscribers) {
    answeredChannel.publish({ source, event: { id, attempt, status, latencyMs } satisfies AnsweredEvent } satisfies ChannelMessage);
  }
}

const spendChannel = channel(SPEND_CHANNEL);

/**
 * Publishes a charged submission's price (USD) on {@link SPEND_CHANNEL}, if
 * anyone subscribes (the metrics' spend counter does). `source`: the client
 * that submitted it.
 */
export function publishSpend(source: unknown, amount: number, endpoint: string): void {
  if (spendChannel.hasSubscribers) spendChannel.publish({ source, event: { amount, endpoint } } satisfies ChannelMessage);
}

/**
 * The channels of one source, created on first use and kept: a strong
 * reference keeps each channel (and so its subscribers) alive, and a map
 * lookup is all a publish costs while nobody subscribes.
 */
export class ChannelGroup {
  readonly #source: ChannelSource;
  readonly #channels = new Map<string, Channel>();

  constructor(source: ChannelSource) {
    this.#source = source;
  }

  #get(name: string): Channel {
    let found = this.#channels.get(name);
    if (found === undefined) {
      found = channel(channelName(this.#source, name));
      this.#channels.set(name, found);
    }
    return found;
  }

  /** True while the channel of `name` has subscribers. */
  has(name: string): boolean {
    return this.#get(name).hasSubscribers;
  }

  /** Publishes `{ source, event }` on the channel of `name`, if anyone subscribes. */
  publish(name: string, source: unknown, event: unknown): void {
    const target = this.#get(name);
    if (target.hasSubscribers) target.publish({ source, event } satisfies ChannelMessage);
  }
}

const groups = new Map<ChannelSource, ChannelGroup>();

/** The one channel group of `source` (shared by every emitter of that kind). */
export function channelsOf(source: ChannelSource): ChannelGroup {
  let group = groups.get(source);
  if (group === undefined) {
    group = new ChannelGroup(source);
    groups.set(source, group);
  }
  return group;
}
