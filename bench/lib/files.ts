import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Every file below `dir` (recursively), in directory order; sort the result for a stable order. */
export function listFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) listFiles(path, out);
    else if (entry.isFile()) out.push(path);
  }
  return out;
}
