/**
 * Child processes that must not outlive this one: each tracked child is
 * killed (SIGKILL) when this process exits, whatever the reason, and
 * forgotten once it has exited by itself.
 */
import type { ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();
let hookInstalled = false;

/** Tracks `child` until it exits; returns it. */
export function killOnExit<C extends ChildProcess>(child: C): C {
  if (!hookInstalled) {
    hookInstalled = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}
