/** Small statistics helpers for benchmark figures. */

/** The median of finite and infinite numbers (NaN ignored); NaN for an empty input. */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/**
 * Linear-interpolated quantile (`q` in [0, 1]) of the non-NaN values. An odd
 * count's median is its middle value; an even count's is the mean of the two
 * middle ones (Infinity stays Infinity).
 */
export function quantile(values: readonly number[], q: number): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  if (lo === hi || a === b) return a;
  return a + (b - a) * (pos - lo);
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

export function min(values: readonly number[]): number {
  let m = Infinity;
  for (const v of values) if (v < m) m = v;
  return m;
}

export function max(values: readonly number[]): number {
  let m = -Infinity;
  for (const v of values) if (v > m) m = v;
  return m;
}

/** Formats a number with `digits` decimals; `∞` and `–` for Infinity and NaN. */
export function fmt(value: number, digits = 2): string {
  if (Number.isNaN(value)) return '–';
  if (value === Infinity) return '∞';
  if (value === -Infinity) return '-∞';
  return value.toFixed(digits);
}

/** Least-squares slope of `y` over `x` (units of y per unit of x); NaN with fewer than two points. */
export function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}
