// What /proc says of a process, for the benches: resident memory three ways, the CPU it has spent,
// and its descendants. VmRSS is the goal's measure, but it counts every page of the node binary a
// process touched, and the four services share those (RssFile, ~35-45 MiB each): PSS splits shared
// pages among their users, so the sum of the four PSS is what the device spends on them.
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcMemory {
  /** VmRSS, MiB. */
  rss: number;
  /** RssAnon, MiB: the process's own heap, stacks and other private pages. */
  anon: number;
  /** Pss, MiB (smaps_rollup). */
  pss: number;
}

const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;
const field = (text: string, name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)![1]);

/** The memory of a process, or undefined once it is gone. */
export function procMemory(pid: number): ProcMemory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    return { rss: mib(field(status, 'VmRSS')), anon: mib(field(status, 'RssAnon')), pss: mib(field(rollup, 'Pss')) };
  } catch {
    return undefined;
  }
}

/** User + system CPU time the process has spent, in ms (clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  // Fields after the command name's closing parenthesis (the last one: a name may hold one): state
  // is 3rd, utime the 14th, stime the 15th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A process and its descendants (nginx's workers), or none once it is gone. */
export function processTree(pid: number): number[] {
  let children: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      children = children.concat(readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
    }
  } catch {
    return [];
  }
  return [pid, ...children.flatMap(processTree)];
}
