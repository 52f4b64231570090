/**
 * The metrics in Prometheus text format (version 0.0.4), with no dependency:
 * a registry that keeps the counters and histograms the bridge feeds it,
 * reads the gauges when scraped, and an optional `node:http` endpoint.
 *
 * Why not prom-client: the metrics are defined once (`definitions.ts`) and
 * moved by one mapping (`mapping.ts`) that the OpenTelemetry adapter shares;
 * prom-client would be a second registry with its own definitions, and the
 * text format of a few counters, gauges and histograms is a page of code.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { METRICS, type Attributes, type CounterKey, type HistogramKey, type MetricDefinition, type MetricKey } from './definitions.js';
import { MetricsBridge, type ClientLike, type MetricSink, type SchedulerLike } from './mapping.js';
import { checkNumber, options as rootOptions, text } from '../internal/validate.js';

interface Histogram {
  /** Counts per bucket (not cumulative), then one for +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

/** The content type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labels(attributes: Attributes, extra?: string): string {
  const parts = Object.entries(attributes).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra !== undefined) parts.push(extra);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function num(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return Number.isNaN(value) ? 'NaN' : String(value);
}

function header(out: string[], def: MetricDefinition, name: string, type: string): void {
  out.push(`# HELP ${name} ${def.description.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
}

/** Options of {@link PrometheusMetrics.listen}. */
export interface MetricsServerOptions {
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /**
   * Interface to listen on.
   * @default '127.0.0.1'
   */
  host?: string;
}

/** A running `/metrics` endpoint. */
export interface MetricsServer {
  /** `http://host:port/metrics`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The scheduler's and the client's metrics in Prometheus text format.
 * Created, it subscribes to the diagnostics channels; `render()` gives the
 * text, `listen()` serves it at `/metrics`, `close()` stops both.
 *
 * @example
 * const metrics = new PrometheusMetrics().track(client);
 * const server = await metrics.listen({ port: 9464 });
 * // ... scrape http://127.0.0.1:9464/metrics
 * await metrics.close();
 */
export class PrometheusMetrics {
  readonly #bridge: MetricsBridge;
  /** Values by attribute object (the bridge hands out one object per label set). */
  readonly #counters = new Map<CounterKey, Map<Attributes, number>>();
  readonly #histograms = new Map<HistogramKey, Map<Attributes, Histogram>>();
  readonly #servers = new Set<Server>();

  constructor() {
    const sink: MetricSink = {
      add: (key, value, attributes) => this.#add(key, value, attributes),
      record: (key, value, attributes) => this.#record(key, value, attributes),
    };
    this.#bridge = new MetricsBridge(sink);
  }

  /** Reads gauges from this scheduler or client (one that publishes events is picked up anyway). */
  track(source: SchedulerLike | ClientLike): this {
    this.#bridge.track(source);
    return this;
  }

  #add(key: CounterKey, value: number, attributes: Attributes): void {
    let series = this.#counters.get(key);
    if (series === undefined) this.#counters.set(key, (series = new Map()));
    series.set(attributes, (series.get(attributes) ?? 0) + value);
  }

  #record(key: HistogramKey, value: number, attributes: Attributes): void {
    let series = this.#histograms.get(key);
    if (series === undefined) this.#histograms.set(key, (series = new Map()));
    let h = series.get(attributes);
    const buckets = METRICS[key].buckets;
    if (h === undefined) series.set(attributes, (h = { counts: new Array<number>(buckets.length + 1).fill(0), sum: 0, count: 0 }));
    let i = 0;
    while (i < buckets.length && value > (buckets[i] as number)) i++;
    h.counts[i] = (h.counts[i] as number) + 1;
    h.sum += value;
    h.count++;
  }

  /** The metrics now, in Prometheus text format. */
  render(): string {
    const out: string[] = [];
    const observed = new Map<MetricKey, string[]>();
    this.#bridge.collect((key, value, attributes) => {
      const def: MetricDefinition = METRICS[key];
      let lines = observed.get(key);
      if (lines === undefined) observed.set(key, (lines = []));
      lines.push(`${def.prometheus}${def.kind === 'counter' ? '_total' : ''}${labels(attributes)} ${num(value)}`);
    });
    for (const key of Object.keys(METRICS) as MetricKey[]) {
      const def: MetricDefinition = METRICS[key];
      if (def.kind === 'gauge') {
        header(out, def, def.prometheus, 'gauge');
        out.push(...(observed.get(key) ?? []));
      } else if (def.kind === 'counter' && def.observed === true) {
        header(out, def, `${def.prometheus}_total`, 'counter');
        out.push(...(observed.get(key) ?? []));
      } else if (def.kind === 'counter') {
        const name = `${def.prometheus}_total`;
        header(out, def, name, 'counter');
        const series = this.#counters.get(key as CounterKey);
        if (series === undefined || series.size === 0) {
          if (def.attributes.length === 0) out.push(`${name} 0`);
        } else {
          for (const [attributes, value] of series) out.push(`${name}${labels(attributes)} ${num(value)}`);
        }
      } else {
        const name = def.prometheus;
        header(out, def, name, 'histogram');
        const buckets = def.buckets ?? [];
        const series = this.#histograms.get(key as HistogramKey) ?? new Map<Attributes, Histogram>();
        const list: [Attributes, Histogram][] =
          series.size === 0 && def.attributes.length === 0 ? [[{}, { counts: new Array<number>(buckets.length + 1).fill(0), sum: 0, count: 0 }]] : [...series];
        for (const [attributes, h] of list) {
          let cumulative = 0;
          buckets.forEach((bound, i) => {
            cumulative += h.counts[i] as number;
            out.push(`${name}_bucket${labels(attributes, `le="${num(bound)}"`)} ${cumulative}`);
          });
          out.push(`${name}_bucket${labels(attributes, 'le="+Inf"')} ${h.count}`);
          out.push(`${name}_sum${labels(attributes)} ${num(h.sum)}`);
          out.push(`${name}_count${labels(attributes)} ${h.count}`);
        }
      }
    }
    return `${out.join('\n')}\n`;
  }

  /** Serves `render()` at `GET /metrics` (anything else: 404). Resolves once listening. */
  async listen(options: MetricsServerOptions): Promise<MetricsServer> {
    rootOptions(options, ['port', 'host']);
    const port = checkNumber('port', options.port, { min: 0, max: 65535, integer: true });
    const host = text('host', options.host, '127.0.0.1');
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(path === '/metrics' ? 405 : 404, { 'content-type': 'text/plain; charset=utf-8' }).end(path === '/metrics' ? 'GET only\n' : 'Not found: try /metrics\n');
        return;
      }
      let body: string;
      try {
        body = this.render();
      } catch (error) {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics failed: ${(error as Error).message}\n`);
        return;
      }
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    // A scrape must never keep the process alive.
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#servers.add(server);
    const bound = (server.address() as AddressInfo).port;
    const shownHost = host.includes(':') ? `[${host}]` : host;
    return {
      url: `http://${shownHost}:${bound}/metrics`,
      port: bound,
      close: () => this.#closeServer(server),
    };
  }

  /** Stops listening (every server) and unsubscribes from the channels. Idempotent. */
  async close(): Promise<void> {
    this.#bridge.close();
    await Promise.all([...this.#servers].map((server) => this.#closeServer(server)));
  }

  #closeServer(server: Server): Promise<void> {
    if (!this.#servers.delete(server)) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
