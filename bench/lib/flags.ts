/**
 * `--name=a,b` narrows a scenario to some of its named parts (e.g. to repeat
 * one configuration); an unknown name is an error that names the flag.
 */
export function selected<T extends string>(flags: ReadonlySet<string>, flag: string, all: readonly T[]): readonly T[] {
  const raw = [...flags].find((f) => f.startsWith(`--${flag}=`));
  if (raw === undefined) return all;
  const names = raw.slice(flag.length + 3).split(',').filter((n) => n !== '');
  const unknown = names.filter((n) => !(all as readonly string[]).includes(n));
  if (unknown.length > 0 || names.length === 0) {
    throw new Error(`--${flag}: unknown ${unknown.join(', ') || '(empty)'}; choose from ${all.join(', ')}`);
  }
  return all.filter((n) => names.includes(n));
}
