/**
 * Route table of the fake API (`/api/v1/client/...`).
 */
import { FAKE_ENDPOINTS, type FakeEndpoint } from './options.js';

export const API_PREFIX = '/api/v1/client';

export type Route =
  | { kind: 'balance'; key: string }
  | { kind: 'models'; key: string }
  | { kind: 'status'; key: string; id: string }
  | { kind: 'submit'; key: string; endpoint: FakeEndpoint }
  | { kind: 'price'; key: string; endpoint: FakeEndpoint }
  | { kind: 'method-not-allowed'; key: string; path: string; allowed: string };

const ENDPOINTS = new Set<string>(FAKE_ENDPOINTS);

/** Matches `method` + `path` (without query). `path` must start with `API_PREFIX`; undefined = 404. */
export function matchRoute(method: string, path: string): Route | undefined {
  if (!path.startsWith(`${API_PREFIX}/`)) return undefined;
  let rest = path.slice(API_PREFIX.length + 1);
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  const parts = rest.split('/');
  const [first, second, third] = parts;
  if (first === undefined || third !== undefined) return undefined;

  let route: Route | undefined;
  let allowed = 'GET';
  if (second === undefined) {
    if (first === 'balance') route = { kind: 'balance', key: 'GET /balance' };
    else if (first === 'models') route = { kind: 'models', key: 'GET /models' };
    else if (ENDPOINTS.has(first)) {
      route = { kind: 'submit', key: `POST /${first}`, endpoint: first as FakeEndpoint };
      allowed = 'POST';
    }
  } else if (first === 'request-status' && second !== '') {
    route = { kind: 'status', key: 'GET /request-status', id: decodeURIComponent(second) };
  } else if (second === 'price-calculation' && ENDPOINTS.has(first)) {
    route = { kind: 'price', key: `POST /${first}/price-calculation`, endpoint: first as FakeEndpoint };
    allowed = 'POST';
  }
  if (!route) return undefined;
  if (method !== allowed) {
    return { kind: 'method-not-allowed', key: `${method} ${route.key.slice(route.key.indexOf(' ') + 1)}`, path: `${API_PREFIX.slice(1)}/${rest}`, allowed };
  }
  return route;
}
