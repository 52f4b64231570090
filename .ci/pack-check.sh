#!/usr/bin/env bash
# Packs the package as `npm publish` would and consumes the tarball from an empty project:
# ESM import, require() (Node >= 20.19), a TypeScript consumer (nodenext and bundler, strict with
# exactOptionalPropertyTypes, skipLibCheck off so our .d.ts files are checked too), the README's
# TypeScript blocks as written, `npx modelbeam-batch --help`, the missing-ioredis and missing-@opentelemetry/api
# errors, the OpenTelemetry adapter once the API is installed, then publint
# and @arethetypeswrong/cli (ESM-only profile) on the same tarball. Usage: bash .ci/pack-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
tsc="$repo/node_modules/.bin/tsc"
work="$(mktemp -d "${TMPDIR:-/tmp}/mbs-pack.XXXXXX")"
trap 'rm -rf "$work"' EXIT
step() { printf '\n== pack-check: %s\n' "$*"; }

step "npm pack (prepack: clean + build)"
npm pack --silent --pack-destination "$work" >/dev/null
tarball="$(ls "$work"/modelbeam-scheduler-*.tgz)"
tar -tzf "$tarball" | sed 's#^package/##' | sort >"$work/files.txt"
echo "$(wc -l <"$work/files.txt") files in $(basename "$tarball")"
if grep -E '\.map$|^src/|\.tsbuildinfo$' "$work/files.txt"; then
  echo "pack-check: source maps, sources or build info in the tarball (listed above)" >&2
  exit 1
fi
for f in LICENSE README.md package.json dist/index.js dist/index.d.ts dist/redis.js dist/otel.js dist/otel.d.ts dist/testing/index.js dist/cli/main.js docs/metrics.md; do
  grep -qx "$f" "$work/files.txt" || { echo "pack-check: $f is missing from the tarball" >&2; exit 1; }
done

step "publint"
(cd "$work" && "$repo/node_modules/.bin/publint" run "$tarball" --strict)
step "attw --profile esm-only"
"$repo/node_modules/.bin/attw" "$tarball" --profile esm-only --no-emoji

step "install the tarball into an empty project (without ioredis or @opentelemetry/api)"
app="$work/app"
mkdir -p "$app"
cd "$app"
printf '{ "name": "consumer", "private": true, "version": "0.0.0" }\n' >package.json
npm install --no-audit --no-fund --prefer-offline --silent "$tarball" @types/node@20
if [[ -d node_modules/ioredis ]]; then echo "pack-check: ioredis was installed though it is an optional peer" >&2; exit 1; fi
if [[ -d node_modules/@opentelemetry/api ]]; then echo "pack-check: @opentelemetry/api was installed though it is an optional peer" >&2; exit 1; fi

step "ESM import, a working call against the bundled fake server"
cat >esm.mjs <<'JS'
import assert from 'node:assert/strict';
import { ModelBeamClient, PrometheusMetrics, RateLimitScheduler, SchedulerError } from 'modelbeam-scheduler';
import { startFakeModelBeam } from 'modelbeam-scheduler/testing';
assert.equal(typeof RateLimitScheduler, 'function');
const server = await startFakeModelBeam();
const metrics = new PrometheusMetrics();
const client = new ModelBeamClient({ apiKey: 'test-key', baseUrl: server.baseUrl });
const result = await client.generate('txt2img', { prompt: 'a fox', model: 'Flux1schnell', width: 512, height: 512, steps: 4 });
assert.equal(result.status, 'done');
assert.match(metrics.render(), /^modelbeam_client_jobs_total\{state="done"\} 1$/m);
await metrics.close();
await client.close();
await server.close();
// @opentelemetry/api is not installed: the OpenTelemetry entry point names the package to install.
await assert.rejects(import('modelbeam-scheduler/otel'), (error) => {
  assert.ok(error instanceof SchedulerError, String(error));
  assert.equal(error.code, 'MISSING_DEPENDENCY');
  assert.match(error.message, /npm install @opentelemetry\/api/);
  return true;
});
// ioredis is not installed: the Redis entry point names the package to install.
await assert.rejects(import('modelbeam-scheduler/redis'), (error) => {
  assert.ok(error instanceof SchedulerError, String(error));
  assert.equal(error.code, 'MISSING_DEPENDENCY');
  assert.match(error.message, /npm install ioredis/);
  return true;
});
console.log('esm: ok');
JS
node esm.mjs

step "require() of the ESM package"
cat >cjs.cjs <<'JS'
const assert = require('node:assert/strict');
const { RateLimitScheduler, isSchedulerError } = require('modelbeam-scheduler');
const { ManualClock } = require('modelbeam-scheduler/testing');
assert.equal(typeof RateLimitScheduler, 'function');
assert.equal(typeof ManualClock, 'function');
assert.equal(isSchedulerError(new Error('x')), false);
console.log('require: ok');
JS
node cjs.cjs

step "npx modelbeam-batch --help"
npx --no-install modelbeam-batch --help >help.txt
grep -q 'modelbeam-batch' help.txt || { cat help.txt; echo "pack-check: --help did not name the command" >&2; exit 1; }
echo "help: ok ($(wc -l <help.txt) lines)"

step "the OpenTelemetry adapter, once @opentelemetry/api (and an SDK) are installed"
npm install --no-audit --no-fund --prefer-offline --silent ioredis@5 @opentelemetry/api@1.9 @opentelemetry/sdk-metrics@2
cat >otel.mjs <<'JS'
import assert from 'node:assert/strict';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { RateLimitScheduler } from 'modelbeam-scheduler';
import { instrumentOpenTelemetry } from 'modelbeam-scheduler/otel';
const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
const provider = new MeterProvider({ readers: [reader] });
const instrumentation = instrumentOpenTelemetry({ meterProvider: provider });
const scheduler = new RateLimitScheduler();
await scheduler.schedule(() => ({ status: 200, headers: {} }));
await reader.forceFlush();
const names = exporter.getMetrics().flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name)));
assert.ok(names.includes('modelbeam.scheduler.attempts'), names.join(', '));
instrumentation.close();
await scheduler.close();
await provider.shutdown();
console.log('otel: ok');
JS
node otel.mjs

step "TypeScript consumers (nodenext and bundler), with the README blocks"
mkdir -p ts
cat >ts/consumer.ts <<'TS'
import { once } from 'node:events';
import {
  ModelBeamClient,
  RateLimitScheduler,
  SchedulerError,
  type GenerateResult,
  type IdleEvent,
  type SchedulerOptions,
} from 'modelbeam-scheduler';
import { RedisStore, type RedisStoreOptions } from 'modelbeam-scheduler/redis';
import { instrumentOpenTelemetry, type OpenTelemetryMetrics } from 'modelbeam-scheduler/otel';
import { startFakeModelBeam, type FakeModelBeamServer } from 'modelbeam-scheduler/testing';

const options: SchedulerOptions = { maxConcurrent: 4 };
const scheduler = new RateLimitScheduler(options);
const idle: Promise<unknown[]> = once(scheduler, 'idle', { signal: AbortSignal.timeout(1000) });
scheduler.on('idle', (e: IdleEvent) => console.log(e.succeeded));
const redisOptions: RedisStoreOptions = { account: 'a' };
export const store: RedisStore = new RedisStore(redisOptions);
export async function run(server: FakeModelBeamServer): Promise<GenerateResult> {
  const client = new ModelBeamClient({ apiKey: 'k', baseUrl: server.baseUrl, scheduler });
  try {
    return await client.generate('txt2img', { prompt: 'p', model: 'm', width: 512, height: 512, steps: 4 });
  } catch (error) {
    if (error instanceof SchedulerError) console.log(error.code);
    throw error;
  } finally {
    await client.close();
  }
}
export const instrumentation: OpenTelemetryMetrics = instrumentOpenTelemetry({ track: [scheduler] });
export { idle, startFakeModelBeam };
TS
node "$repo/.ci/readme-blocks.mjs" ts "$repo/README.md"
common='"strict": true, "exactOptionalPropertyTypes": true, "noUncheckedIndexedAccess": true, "skipLibCheck": false, "noEmit": true, "target": "ES2022", "lib": ["ES2023"], "types": ["node"], "verbatimModuleSyntax": true'
printf '{ "compilerOptions": { "module": "nodenext", "moduleResolution": "nodenext", %s }, "include": ["ts"] }\n' "$common" >tsconfig.nodenext.json
printf '{ "compilerOptions": { "module": "preserve", "moduleResolution": "bundler", %s }, "include": ["ts"] }\n' "$common" >tsconfig.bundler.json
# The consumer is an ES module (top-level await in the README blocks needs it under nodenext).
node -e "const p=require('./package.json'); p.type='module'; require('fs').writeFileSync('package.json', JSON.stringify(p, null, 2))"
"$tsc" --version
"$tsc" -p tsconfig.nodenext.json && echo "tsc nodenext: ok"
"$tsc" -p tsconfig.bundler.json && echo "tsc bundler: ok"

step "done"
