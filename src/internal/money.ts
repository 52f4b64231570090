/**
 * Money arithmetic. Prices are summed as integer nano-dollars (1e-9 USD), so
 * that a total of 100,000 prices is exact (no floating-point drift) and
 * matches what the API charges to the cent. Redis keeps the same integers.
 */

/** Nano-dollars per dollar. */
export const NANO = 1e9;

/** USD to integer nano-dollars. */
export function toNano(usd: number): number {
  return Math.round(usd * NANO);
}

/** Integer nano-dollars to USD. */
export function fromNano(nano: number): number {
  return nano / NANO;
}

/** USD with up to 6 decimals, trailing zeros dropped, at least 2 decimals: `1.5` → `1.50`, `0.00187` → `0.00187`. */
export function formatUsd(usd: number): string {
  const fixed = usd.toFixed(6).replace(/0+$/, '');
  const [whole = '0', frac = ''] = fixed.split('.');
  return `${whole}.${frac.padEnd(2, '0')}`;
}
