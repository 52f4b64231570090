#!/usr/bin/env node
/**
 * `modelbeam-batch`: the command-line entry point. See `program.ts` for the
 * commands and `exit-codes.ts` for what the exit code means, and `heap.ts` for
 * the V8 heap setting this process applies to itself.
 */
import { tuneHeapForBatch } from './heap.js';
import { main } from './program.js';

tuneHeapForBatch();
const code = await main();
// Exit explicitly (sockets or timers of a stopped run must not keep the process up), once stdout has drained.
process.stdout.write('', () => process.exit(code));
