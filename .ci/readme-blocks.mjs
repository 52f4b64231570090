#!/usr/bin/env node
// Extracts every ```ts block of README.md into <outDir>/readme-<n>.ts, one complete program per file, so
// that the blocks are type-checked as written (.ci/pack-check.sh compiles them against the packed package).
// Usage: node .ci/readme-blocks.mjs <outDir> [README.md]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [outDir, readme = 'README.md'] = process.argv.slice(2);
if (!outDir) {
  console.error('usage: node .ci/readme-blocks.mjs <outDir> [README.md]');
  process.exit(2);
}
const lines = readFileSync(readme, 'utf8').split('\n');
mkdirSync(outDir, { recursive: true });
let block;
let start = 0;
let n = 0;
for (const [i, line] of lines.entries()) {
  if (block === undefined && /^```(ts|typescript)\s*$/.test(line)) {
    block = [];
    start = i + 1;
  } else if (block !== undefined && /^```\s*$/.test(line)) {
    n++;
    // A header comment maps compiler errors back to the README line; `export {}` makes each block a module
    // (top-level await, no global collisions between blocks).
    const file = join(outDir, `readme-${String(n).padStart(2, '0')}.ts`);
    writeFileSync(file, `// ${readme}:${start + 1}\n${block.join('\n')}\nexport {};\n`);
    block = undefined;
  } else if (block !== undefined) {
    block.push(line);
  }
}
if (block !== undefined) {
  console.error(`${readme}:${start}: a \`\`\`ts block is never closed`);
  process.exit(1);
}
console.log(`${n} TypeScript blocks of ${readme} written to ${outDir}`);
