// Validates kiwi/config.kiwi for every profile: `kiwi-ng image info` checks KIWI's RNG schema and
// schematron rules offline (no repository is contacted), so the MicroOS profiles are checked
// on this Debian host too, although they cannot be built here.
//   npx tsx image/validate.ts [kiwi-dir]
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import path from 'node:path';

const run = promisify(execFile);
export const PROFILES = ['microos-x86_64', 'microos-rpi', 'debian-qemu'] as const;

export async function validateProfile(descriptionDir: string, profile: string): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run('kiwi-ng', ['--profile', profile, 'image', 'info', '--description', descriptionDir]);
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message };
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'kiwi'));
  let failed = 0;
  for (const profile of PROFILES) {
    const result = await validateProfile(dir, profile);
    console.log(`${result.ok ? 'ok  ' : 'FAIL'} ${profile}`);
    if (!result.ok) {
      failed++;
      console.log(result.output.split('\n').filter((l) => /error|ERROR/.test(l)).join('\n'));
    }
  }
  process.exit(failed ? 1 : 0);
}
