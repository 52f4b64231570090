/**
 * ioredis is an optional peer dependency: without it, importing
 * `modelbeam-scheduler/redis` fails with an error naming the package to
 * install (the pack check, .ci/pack-check.sh, does the same from a real
 * install without ioredis).
 */
import { describe, expect, it } from 'vitest';
import { loadIoredis } from '../src/store/ioredis.js';
import { SchedulerError } from '../src/errors/scheduler-error.js';

function missing(code: string): (id: string) => never {
  return (id) => {
    throw Object.assign(new Error(`Cannot find module '${id}'`), { code });
  };
}

describe('loading ioredis', () => {
  it.each(['MODULE_NOT_FOUND', 'ERR_MODULE_NOT_FOUND'])('a missing ioredis (%s) is a clear error naming the package', (code) => {
    let thrown: unknown;
    try {
      loadIoredis(missing(code));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(SchedulerError);
    expect(thrown).toMatchObject({ code: 'MISSING_DEPENDENCY' });
    expect((thrown as Error).message).toMatch(/modelbeam-scheduler\/redis needs the package `ioredis`/);
    expect((thrown as Error).message).toContain('npm install ioredis');
    expect((thrown as Error).cause).toMatchObject({ code });
  });

  it('another failure inside ioredis is passed on as it is', () => {
    const boom = new SyntaxError('Unexpected token');
    expect(() =>
      loadIoredis(() => {
        throw boom;
      }),
    ).toThrow(boom);
  });

  it('the installed ioredis loads, with its Redis class', () => {
    const ioredis = loadIoredis();
    expect(typeof ioredis.Redis).toBe('function');
  });
});
