/**
 * SIGINT / SIGTERM handling for a batch run: the first signal stops
 * gracefully, the second exits at once. Both leave the batch resumable.
 */

export type StopSignal = 'SIGINT' | 'SIGTERM';

export interface SignalHandlers {
  /** First signal: stop dispatching and wind down. */
  onFirst(signal: StopSignal): void;
  /** Second signal: exit now. */
  onSecond(signal: StopSignal): void;
}

/**
 * Installs the handlers; returns a function that removes them. Node's default
 * handling (exit at once) is replaced only while installed.
 */
export function installSignalHandlers(handlers: SignalHandlers, target: NodeJS.Process = process): () => void {
  let count = 0;
  const handle = (signal: StopSignal): void => {
    count++;
    if (count === 1) handlers.onFirst(signal);
    else handlers.onSecond(signal);
  };
  const onInt = (): void => handle('SIGINT');
  const onTerm = (): void => handle('SIGTERM');
  target.on('SIGINT', onInt);
  target.on('SIGTERM', onTerm);
  return () => {
    target.off('SIGINT', onInt);
    target.off('SIGTERM', onTerm);
  };
}
