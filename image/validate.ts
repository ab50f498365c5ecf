// Validates the KIWI description (kiwi/) for every profile it declares, in two layers:
//  1. `kiwi-ng image info`: KIWI's RNG schema and schematron rules, offline (no repository is
//     contacted), so the MicroOS profiles are checked on this Debian host too, although they
//     cannot be built here;
//  2. appliance rules: what a schema-valid profile still needs to make a working Piccolo device
//     (an OS that updates itself, a writable /etc, a Pi that boots). The facts come from KIWI's own
//     profile resolution (XMLState), so inherited sections and profile filters count as KIWI
//     sees them. The rules key on what a profile is (zypper, read-only root, Pi boot), not on its name.
//   npx tsx image/validate.ts [kiwi-dir]
import { execFile } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import path from 'node:path';

const run = promisify(execFile);
export const KIWI_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'kiwi');
/** The profiles config.kiwi must declare; a new profile is added here on purpose. */
export const PROFILES = ['microos-x86_64', 'microos-rpi', 'debian-qemu', 'debian-qemu-aarch64'] as const;
const SCRIPTS = ['config.sh', 'disk.sh'];

export interface CheckResult {
  ok: boolean;
  output: string;
}

export async function validateProfile(descriptionDir: string, profile: string): Promise<CheckResult> {
  try {
    const { stdout, stderr } = await run('kiwi-ng', ['--profile', profile, 'image', 'info', '--description', descriptionDir], { timeout: 120_000 });
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message };
  }
}

/** Profile names as declared in config.kiwi's <profiles>. */
export async function declaredProfiles(descriptionDir: string): Promise<string[]> {
  const xml = await readFile(path.join(descriptionDir, 'config.kiwi'), 'utf8');
  const section = /<profiles>([\s\S]*?)<\/profiles>/.exec(xml.replace(/<!--[\s\S]*?-->/g, ''))?.[1] ?? '';
  return [...section.matchAll(/<profile\s[^>]*name="([^"]+)"/g)].map((m) => m[1]);
}

/** Folders beside config.kiwi that KIWI treats as per-profile root overlays (named after a profile). */
export async function profileOverlayDirs(descriptionDir: string): Promise<string[]> {
  const names: string[] = [];
  for (const name of await readdir(descriptionDir)) {
    if (name !== 'root' && (await stat(path.join(descriptionDir, name))).isDirectory()) names.push(name);
  }
  return names.sort();
}

export interface ProfileFacts {
  profile: string;
  packageManager: string;
  packages: string[];
  collections: string[];
  volumes: string[]; // KIWI's volume names: "boot/writable" is "boot_writable"
  firmware: string | null;
  filesystem: string | null;
  fsMountOptions: string | null;
  btrfsQuotaGroups: boolean | null;
  readOnlyRootSnapshot: boolean | null;
  efiPartTable: string | null;
  editBootInstall: string | null;
}

// KIWI's Python API, run with the interpreter kiwi-ng itself uses, from a neutral working
// directory (-P too): a folder named kiwi/ in the current directory would shadow the module.
const FACTS_PY = `
import json, sys
from kiwi.xml_description import XMLDescription
from kiwi.xml_state import XMLState
description = XMLDescription(sys.argv[1]).load()
out = []
for profile in sys.argv[2:]:
    state = XMLState(description, [profile])
    t = state.build_type
    out.append(dict(profile=profile, packageManager=state.get_package_manager(),
        packages=sorted(state.get_system_packages()), collections=sorted(state.get_system_collections()),
        volumes=[v.name for v in state.get_volumes()], firmware=t.get_firmware(), filesystem=t.get_filesystem(),
        fsMountOptions=t.get_fsmountoptions(), btrfsQuotaGroups=t.get_btrfs_quota_groups(),
        readOnlyRootSnapshot=t.get_btrfs_root_is_readonly_snapshot(), efiPartTable=t.get_efiparttable(),
        editBootInstall=t.get_editbootinstall()))
print("PICCOLO-FACTS " + json.dumps(out))
`;

async function kiwiPython(): Promise<string> {
  const { stdout } = await run('sh', ['-c', 'command -v kiwi-ng']);
  const shebang = (await readFile(stdout.trim(), 'utf8')).split('\n', 1)[0];
  return /^#!\s*(\S+)/.exec(shebang)?.[1] ?? 'python3';
}

export async function profileFacts(descriptionDir: string, profiles: readonly string[]): Promise<ProfileFacts[]> {
  const { stdout } = await run(await kiwiPython(), ['-P', '-c', FACTS_PY, path.resolve(descriptionDir, 'config.kiwi'), ...profiles], {
    cwd: tmpdir(),
    timeout: 60_000,
  });
  const line = stdout.split('\n').find((l) => l.startsWith('PICCOLO-FACTS '));
  if (!line) throw new Error(`KIWI printed no profile facts:\n${stdout}`);
  return JSON.parse(line.slice('PICCOLO-FACTS '.length)) as ProfileFacts[];
}

/** What keeps a schema-valid profile from being a working appliance; [] when nothing. */
export async function applianceProblems(descriptionDir: string, facts: ProfileFacts): Promise<string[]> {
  const problems: string[] = [];
  const has = (pkg: string) => facts.packages.includes(pkg);
  const need = (ok: boolean, problem: string) => ok || problems.push(`${facts.profile}: ${problem}`);
  const script = async (name: string) => readFile(path.join(descriptionDir, name), 'utf8').catch(() => '');

  for (const pkg of ['podman', 'gocryptfs', 'nftables']) need(has(pkg), `package ${pkg} missing`);
  need(has('fuse3') && !has('fuse'), 'gocryptfs needs fusermount3: install fuse3 (not fuse)');

  if (facts.packageManager === 'zypper') {
    // MicroOS: updates are transactional-update snapshots, or the device never updates.
    need(facts.collections.includes('microos_base_zypper'), 'pattern microos_base_zypper (transactional-update, zypper) missing');
    for (const pkg of ['transactional-update', 'zypper', 'zypp-boot-plugin']) need(has(pkg), `package ${pkg} missing`);
  }
  if (facts.readOnlyRootSnapshot) {
    need(has('read-only-root-fs'), 'read-only root without read-only-root-fs (setup-etc-subvol)');
    need(/^\s*\/usr\/libexec\/setup-etc-subvol\b/m.test(await script('disk.sh')), 'disk.sh does not run setup-etc-subvol: /etc would stay on the read-only root');
    need(facts.volumes.includes('boot_writable'), 'no boot/writable volume');
    const config = await script('config.sh');
    need(/\/etc\/fstab\.script/.test(config) && /ro=vfs/.test(config), 'config.sh writes no fstab.script turning the root\'s ro into ro=vfs');
  }
  if (facts.editBootInstall) {
    need(existsSync(path.join(descriptionDir, facts.editBootInstall)), `editbootinstall script ${facts.editBootInstall} missing`);
  }
  if (facts.editBootInstall === 'editbootinstall_rpi.sh') {
    need(facts.efiPartTable === 'msdos', 'the Pi boot ROM reads MBR disks only: efiparttable="msdos"');
    for (const pkg of ['raspberrypi-firmware', 'raspberrypi-firmware-config', 'u-boot-rpiarm64', 'arm-trusted-firmware-rpi4']) need(has(pkg), `package ${pkg} missing`);
    if (facts.filesystem === 'btrfs') {
      need(facts.btrfsQuotaGroups === false, 'btrfs quota groups must be off on an SD card');
      const options = (facts.fsMountOptions ?? '').split(',');
      need(options.includes('noatime') && options.some((o) => o === 'compress' || o.startsWith('compress=')), 'mount options need noatime and compress');
    }
    const install = await script(facts.editBootInstall);
    need(/boot\/vc/.test(install) && !/boot\/u-boot\.bin/.test(install), 'editbootinstall_rpi.sh must copy from boot/vc (u-boot.bin is installed there)');
    need(/--part-type\s+\S+\s+1\s+c\b/.test(install), 'editbootinstall_rpi.sh does not set the FAT partition type to 0x0c');
  }
  return problems;
}

/** `bash -n` on each shell script of the description: a syntax error would only show mid-build. */
export async function scriptSyntaxProblems(descriptionDir: string): Promise<string[]> {
  const names = [...SCRIPTS, ...(await readdir(descriptionDir)).filter((n) => /^editboot.*\.sh$/.test(n))];
  const problems: string[] = [];
  for (const name of names) {
    const file = path.join(descriptionDir, name);
    if (!existsSync(file)) continue;
    await run('bash', ['-n', file]).catch((e: { stderr?: string }) => problems.push(`${name}: ${e.stderr?.trim() ?? 'bash -n failed'}`));
  }
  return problems;
}

export interface DescriptionReport {
  profiles: Array<{ profile: string; schema: CheckResult; problems: string[] }>;
  problems: string[]; // description-wide
}

export async function validateDescription(descriptionDir: string): Promise<DescriptionReport> {
  const declared = await declaredProfiles(descriptionDir);
  const problems: string[] = [];
  const missing = PROFILES.filter((p) => !declared.includes(p));
  if (missing.length) problems.push(`config.kiwi does not declare ${missing.join(', ')}`);
  for (const dir of await profileOverlayDirs(descriptionDir)) {
    if (!declared.includes(dir)) problems.push(`folder ${dir}/ names no profile: KIWI would never apply it`);
  }
  problems.push(...(await scriptSyntaxProblems(descriptionDir)));
  const profiles: DescriptionReport['profiles'] = [];
  const schemas = await Promise.all(declared.map((p) => validateProfile(descriptionDir, p)));
  const valid = declared.filter((_, i) => schemas[i].ok);
  const facts = valid.length ? await profileFacts(descriptionDir, valid) : [];
  for (const [i, profile] of declared.entries()) {
    const fact = facts.find((f) => f.profile === profile);
    profiles.push({ profile, schema: schemas[i], problems: fact ? await applianceProblems(descriptionDir, fact) : [] });
  }
  return { profiles, problems };
}

export function reportOk(report: DescriptionReport): boolean {
  return report.problems.length === 0 && report.profiles.every((p) => p.schema.ok && p.problems.length === 0);
}

/** KIWI's error lines (and jing-style schema messages) from a failed `image info`. */
export function schemaErrors(output: string): string {
  return output
    .split('\n')
    .filter((l) => /error|invalid|not allowed|Kiwi\w+Error|Exception/i.test(l))
    .join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = path.resolve(process.argv[2] ?? KIWI_DIR);
  const report = await validateDescription(dir);
  for (const p of report.profiles) {
    console.log(`${p.schema.ok && !p.problems.length ? 'ok  ' : 'FAIL'} ${p.profile}`);
    if (!p.schema.ok) console.log(schemaErrors(p.schema.output) || p.schema.output);
    for (const problem of p.problems) console.log(`  ${problem}`);
  }
  for (const problem of report.problems) console.log(`FAIL ${problem}`);
  process.exit(reportOk(report) ? 0 : 1);
}
