#!/usr/bin/env node
/**
 * `modelbeam-batch`: the command-line entry point. See `program.ts` for the
 * commands and `exit-codes.ts` for what the exit code means.
 */
import { main } from './program.js';

const code = await main();
// Exit explicitly (sockets or timers of a stopped run must not keep the process up), once stdout has drained.
process.stdout.write('', () => process.exit(code));
