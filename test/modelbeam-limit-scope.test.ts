import { describe, expect, it } from 'vitest';
import { ScopeLearner, compareReadings, decide, routeOf, type ScopeReading } from '../src/modelbeam/limit-scope.js';

const W = 1000;

/** A reading: route, limit, remaining, answer number, answers seen at send, requests of its route sent before, time. */
function r(route: string, limit: number | undefined, remaining: number | undefined, answerNo: number, answersAtSend: number, routeSent = 0, at = answerNo * 10): ScopeReading {
  return { route, limit, remaining, answerNo, answersAtSend, routeSent, at };
}

describe('routeOf', () => {
  it.each([
    ['/txt2img', 'txt2img'],
    ['/txt2embedding', 'txt2embedding'],
    ['/request-status/abc-123', 'request-status'],
    ['/balance', 'balance'],
    ['/models?page=2', 'models'],
    ['/txt2img/price-calculation', 'price-calculation'],
    ['/vid2txt', 'transcription'],
    ['/transcribe', 'transcription'],
    ['/audiofile2txt', 'transcription'],
    ['/videos/replace', 'videos/replace'],
  ])('%s → %s', (path, route) => expect(routeOf(path)).toBe(route));
});

describe('compareReadings', () => {
  // [what, prev, next, ownPrev, expected]
  const table: [string, ScopeReading, ScopeReading, ScopeReading | undefined, string][] = [
    ['same route: nothing to compare', r('a', 10, 5, 2, 0), r('a', 10, 8, 3, 2), undefined, 'none'],
    ['next sent before prev arrived: order unknown', r('b', 10, 5, 2, 0), r('a', 3, 2, 3, 1), undefined, 'none'],
    ['more than a window apart', r('b', 10, 5, 2, 0), r('a', 3, 2, 3, 2, 0, 2 + W + 30), undefined, 'none'],
    ['different limits: different counters', r('b', 10, 9, 2, 0), r('a', 3, 2, 3, 2), undefined, 'limits-differ'],
    ['no limits, same remaining and no own history: nothing', r('b', undefined, 5, 2, 0), r('a', undefined, 5, 3, 2), undefined, 'none'],
    ['above the other route while counting down its own: separate', r('b', 10, 3, 2, 1), r('a', 10, 8, 3, 2, 1), r('a', 10, 9, 1, 0, 0), 'separate'],
    ['above the other route and above its own last: a reset explains it', r('b', 10, 3, 2, 1), r('a', 10, 9, 3, 2, 1), r('a', 10, 9, 1, 0, 0), 'none'],
    ['below the other and fell by more than its own requests: shared', r('b', 10, 6, 2, 1), r('a', 10, 5, 3, 2, 1), r('a', 10, 8, 1, 0, 0), 'shared'],
    ['fell by exactly its own requests: nothing', r('b', 10, 8, 2, 1), r('a', 10, 7, 3, 2, 1), r('a', 10, 8, 1, 0, 0), 'none'],
    ['own reading after prev: not the own history of this pair', r('b', 10, 3, 2, 0), r('a', 10, 8, 4, 3, 2), r('a', 10, 9, 3, 2, 1), 'none'],
    ['own reading a window old: not used', r('b', 10, 3, 2, 1), r('a', 10, 8, 3, 2, 1, 30), r('a', 10, 9, 1, 0, 0, 30 - W - 1), 'none'],
  ];
  it.each(table)('%s', (_what, prev, next, own, expected) => expect(compareReadings(prev, next, own, W)).toBe(expected));
});

describe('decide', () => {
  it.each([
    ['account', { separate: 0, shared: 0 }, 'limits-differ', 'endpoint'],
    ['account', { separate: 1, shared: 0 }, 'separate', 'account'],
    ['account', { separate: 2, shared: 0 }, 'separate', 'endpoint'],
    ['account', { separate: 2, shared: 2 }, 'separate', 'account'],
    ['account', { separate: 3, shared: 2 }, 'none', 'endpoint'],
    ['endpoint', { separate: 0, shared: 9 }, 'shared', 'endpoint'],
  ] as const)('%s %o + %s → %s', (mode, votes, evidence, expected) => expect(decide(mode, votes, evidence)).toBe(expected));
});

describe('ScopeLearner', () => {
  it("'auto' starts on one scope and splits when two routes state different limits", () => {
    const l = new ScopeLearner('auto', W);
    expect(l.scopeFor('txt2img')).toBeUndefined();
    const a = l.sent('txt2img');
    l.answered('txt2img', a, 10, 3, 2);
    expect(l.mode).toBe('account');
    const b = l.sent('txt2embedding');
    expect(l.answered('txt2embedding', b, 20, 10, 9)).toBe('limits-differ');
    expect(l.mode).toBe('endpoint');
    expect(l.scopeFor('txt2img')).toBe('txt2img');
    expect(l.learning).toBe(false);
  });

  it("'auto' stays on one scope while the numbers fit one counter", () => {
    const l = new ScopeLearner('auto', W);
    let remaining = 30;
    for (let i = 0; i < 20; i++) {
      const route = i % 2 === 0 ? 'txt2img' : 'request-status';
      const at = l.sent(route);
      l.answered(route, at, i * 10, 30, --remaining);
    }
    expect(l.mode).toBe('account');
    expect(l.learning).toBe(true);
  });

  it("'auto' splits on the same limit once two answers show separate counters", () => {
    const l = new ScopeLearner('auto', W);
    const rem = { a: 10, b: 10 };
    const evidence: string[] = [];
    for (let i = 0; i < 16 && l.mode === 'account'; i++) {
      // Route a is used three times as often: its counter runs down faster than b's.
      const route = i % 4 === 3 ? 'b' : 'a';
      const at = l.sent(route);
      evidence.push(l.answered(route, at, i * 10, 10, --rem[route]));
    }
    expect(evidence.filter((e) => e === 'separate')).toHaveLength(2);
    expect(l.mode).toBe('endpoint');
  });

  it("'account' and 'endpoint' never change", () => {
    const account = new ScopeLearner('account', W);
    account.answered('a', account.sent('a'), 0, 3, 2);
    account.answered('b', account.sent('b'), 1, 10, 9);
    expect(account.mode).toBe('account');
    expect(account.scopeFor('b')).toBeUndefined();
    const endpoint = new ScopeLearner('endpoint', W);
    expect(endpoint.scopeFor('b')).toBe('b');
    expect(endpoint.learning).toBe(false);
  });
});
