/** The machine a benchmark ran on, for RESULTS.md. */
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  os: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  /** ISO-8601, UTC. */
  date: string;
}

function distro(): string | undefined {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    const match = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(text);
    return match?.[1];
  } catch {
    return undefined;
  }
}

export function machineInfo(now = new Date()): MachineInfo {
  const cpus = os.cpus();
  const name = distro();
  return {
    os: `${name ?? os.type()} (${os.type()} ${os.release()}, ${os.arch()})`,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    date: now.toISOString(),
  };
}

/** One markdown line: `Machine: … · Node … · Date …`. */
export function machineLine(m: MachineInfo): string {
  return `${m.os}; CPU ${m.cpu}, ${m.cores} cores; ${m.memoryGiB} GiB RAM; Node ${m.node}`;
}
