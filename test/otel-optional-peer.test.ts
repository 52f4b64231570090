/**
 * `@opentelemetry/api` is an optional peer dependency. In a child process
 * where no `@opentelemetry/*` package can be found (test/helpers/hide-otel.cjs),
 * the library loads and runs a job against the fake server, its channels and
 * Prometheus registry work, and only `modelbeam-scheduler/otel` fails, with an
 * error naming the package to install. (The pack check, .ci/pack-check.sh,
 * does the same from a real install of the tarball without the package.)
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { SchedulerError } from '../src/errors/scheduler-error.js';
import { loadOtelApi } from '../src/metrics/otel-api.js';
import { REPO_ROOT } from './helpers/cli.js';

function missing(code: string): (id: string) => never {
  return (id) => {
    throw Object.assign(new Error(`Cannot find module '${id}'`), { code });
  };
}

function runChild(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--require', './test/helpers/hide-otel.cjs', '--import', 'tsx', 'test/helpers/no-otel-child.ts'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('without @opentelemetry/api', () => {
  it('the library loads and runs; only modelbeam-scheduler/otel fails, naming the package', async () => {
    const { code, stdout, stderr } = await runChild();
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
    expect(report).toMatchObject({
      hidden: true,
      importHidden: true,
      status: 'done',
      jobsDone: true,
      otel: { code: 'MISSING_DEPENDENCY', isSchedulerError: true },
    });
    expect((report['otel'] as { message: string }).message).toContain('npm install @opentelemetry/api');
  });

  it.each(['MODULE_NOT_FOUND', 'ERR_MODULE_NOT_FOUND'])('a missing package (%s) is a clear error naming it', (code) => {
    let thrown: unknown;
    try {
      loadOtelApi(missing(code));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(SchedulerError);
    expect(thrown).toMatchObject({ code: 'MISSING_DEPENDENCY' });
    expect((thrown as Error).message).toMatch(/modelbeam-scheduler\/otel needs the package `@opentelemetry\/api`/);
    expect((thrown as Error).cause).toMatchObject({ code });
  });

  it('another failure inside the package is passed on as it is', () => {
    const boom = new SyntaxError('Unexpected token');
    expect(() =>
      loadOtelApi(() => {
        throw boom;
      }),
    ).toThrow(boom);
  });

  it('the installed package loads, with its metrics API', () => {
    expect(typeof loadOtelApi().metrics.getMeterProvider).toBe('function');
  });
});
