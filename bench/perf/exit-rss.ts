/**
 * Preloaded (`node --import <build>/bench/perf/exit-rss.js …`) into a process
 * whose peak memory a benchmark reports: at exit it writes
 * `process.resourceUsage().maxRSS` and `process.memoryUsage()` to the file
 * named by `BENCH_EXIT_RSS_FILE`. It adds nothing else to the process.
 */
import { writeFileSync } from 'node:fs';

const file = process.env['BENCH_EXIT_RSS_FILE'];
if (file) {
  process.on('exit', () => {
    try {
      writeFileSync(file, `${JSON.stringify({ maxRssKB: process.resourceUsage().maxRSS, memory: process.memoryUsage() })}\n`);
    } catch {
      // Nothing to report to: the parent sees the file missing.
    }
  });
}
