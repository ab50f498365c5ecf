// The KIWI description (kiwi/) for every profile: KIWI 9.24 accepts it (`kiwi-ng image info`, the
// same schema and rules a build applies), and image/validate.ts's appliance rules hold. Copies of
// the description broken on purpose prove that both layers really fail. Needs kiwi-ng (scripts/setup.sh).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
// Dynamic import: validate.ts's CLI entry uses top-level await.
const validate = () => import('../../image/validate.js');

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'piccolo-kiwi-'));
});
test.after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A copy of kiwi/ with config.kiwi (or another file) edited. */
async function brokenCopy(name: string, edit: (text: string) => string, file = 'config.kiwi'): Promise<string> {
  const { KIWI_DIR } = await validate();
  const dir = path.join(tmp, name);
  await cp(KIWI_DIR, dir, { recursive: true, verbatimSymlinks: true });
  const target = path.join(dir, file);
  const before = await readFile(target, 'utf8');
  const after = edit(before);
  assert.is.not(after, before, `the edit for ${name} changed nothing`);
  await writeFile(target, after);
  return dir;
}

test('config.kiwi declares every profile validate.ts checks, and each profile folder is a profile', async () => {
  const { KIWI_DIR, PROFILES, declaredProfiles, profileOverlayDirs } = await validate();
  const declared = await declaredProfiles(KIWI_DIR);
  assert.equal([...declared].sort(), [...PROFILES].sort());
  const overlays = await profileOverlayDirs(KIWI_DIR);
  assert.ok(overlays.includes('debian-qemu'), `profile overlays: ${overlays.join(', ')}`);
  for (const dir of overlays) assert.ok(declared.includes(dir), `kiwi/${dir}/ names no profile`);
});

test('kiwi-ng image info accepts every profile, and every appliance rule holds', async () => {
  const { KIWI_DIR, validateDescription, schemaErrors } = await validate();
  const report = await validateDescription(KIWI_DIR);
  assert.equal(report.problems, []);
  assert.equal(report.profiles.map((p) => p.profile).sort(), ['debian-qemu', 'debian-qemu-aarch64', 'microos-rpi', 'microos-x86_64']);
  for (const p of report.profiles) {
    assert.ok(p.schema.ok, `${p.profile}: kiwi-ng image info failed:\n${schemaErrors(p.schema.output) || p.schema.output}`);
    assert.ok(p.schema.output.includes(`Selected profiles: ${p.profile}`), `${p.profile}: KIWI did not select the profile:\n${p.schema.output}`);
    assert.equal(p.problems, [], p.profile);
  }
});

test('KIWI resolves the MicroOS and Pi profiles to what the issue asks for', async () => {
  const { KIWI_DIR, profileFacts } = await validate();
  const [x86, rpi, debian] = await profileFacts(KIWI_DIR, ['microos-x86_64', 'microos-rpi', 'debian-qemu']);
  for (const facts of [x86, rpi]) {
    assert.ok(facts.collections.includes('microos_base_zypper'), facts.profile);
    for (const pkg of ['transactional-update', 'zypper', 'zypp-boot-plugin', 'fuse3', 'read-only-root-fs']) assert.ok(facts.packages.includes(pkg), `${facts.profile}: ${pkg}`);
    assert.not.ok(facts.packages.includes('fuse'), `${facts.profile}: fuse (fuse 2) next to fuse3`);
    assert.ok(facts.volumes.includes('boot_writable'), `${facts.profile} volumes: ${facts.volumes.join(' ')}`);
    assert.is(facts.readOnlyRootSnapshot, true);
  }
  assert.is(rpi.btrfsQuotaGroups, false);
  assert.is(rpi.fsMountOptions, 'noatime,compress=zstd:1');
  assert.is(rpi.efiPartTable, 'msdos');
  assert.ok(rpi.packages.includes('arm-trusted-firmware-rpi4'));
  // Pi packages stay out of the x86 image, and MicroOS packages out of Debian's.
  assert.not.ok(x86.packages.includes('arm-trusted-firmware-rpi4'));
  assert.is(debian.packageManager, 'apt');
  assert.not.ok(debian.packages.includes('transactional-update'));
  assert.ok(debian.packages.includes('fuse3'));
});

test('the aarch64 Debian profile: the arm64 kernel, no x86 boot loader, the same runtime packages', async () => {
  const { KIWI_DIR, profileFacts } = await validate();
  const [x86, arm] = await profileFacts(KIWI_DIR, ['debian-qemu', 'debian-qemu-aarch64']);
  assert.is(arm.firmware, 'custom');
  assert.is(arm.packageManager, 'apt');
  const onlyX86 = x86.packages.filter((p) => !arm.packages.includes(p));
  const onlyArm = arm.packages.filter((p) => !x86.packages.includes(p));
  assert.equal(onlyX86.sort(), ['grub-efi-amd64', 'grub-pc-bin', 'linux-image-amd64', 'shim-signed']);
  assert.equal(onlyArm, ['linux-image-arm64']);
});

test('a schema-invalid copy fails kiwi-ng image info, and validate.ts reports it', async () => {
  const { validateProfile, validateDescription, reportOk } = await validate();
  // luks_pbkdf is newer than KIWI 9.24: exactly the kind of attribute real descriptions carry.
  const dir = await brokenCopy('newer-attribute', (xml) => xml.replace('<type image="oem" filesystem="btrfs" firmware="uefi"', '<type image="oem" luks_pbkdf="argon2id" filesystem="btrfs" firmware="uefi"'));
  const bad = await validateProfile(dir, 'microos-x86_64');
  assert.not.ok(bad.ok, bad.output);
  assert.match(bad.output, /luks_pbkdf/);
  // KIWI validates the whole document, so every profile fails with it...
  const report = await validateDescription(dir);
  assert.not.ok(reportOk(report));
  assert.equal(report.profiles.filter((p) => p.schema.ok).map((p) => p.profile), []);
  // ...while an unedited copy passes: the failure is the attribute, not the copying.
  const { KIWI_DIR } = await validate();
  const control = path.join(tmp, 'control');
  await cp(KIWI_DIR, control, { recursive: true, verbatimSymlinks: true });
  assert.ok((await validateProfile(control, 'microos-x86_64')).ok);
});

test('a malformed config.kiwi fails for every profile', async () => {
  const { validateProfile } = await validate();
  const dir = await brokenCopy('malformed', (xml) => xml.replace('</preferences>', '</preference>'));
  for (const profile of ['microos-x86_64', 'microos-rpi', 'debian-qemu']) {
    const result = await validateProfile(dir, profile);
    assert.not.ok(result.ok, `${profile} accepted a malformed description`);
  }
});

test('the appliance rules catch what the schema lets through', async () => {
  const { validateProfile, profileFacts, applianceProblems } = await validate();
  const cases: Array<{ name: string; edit: (s: string) => string; file?: string; expect: RegExp; profile: string }> = [
    { name: 'no-zypper-pattern', edit: (s) => s.replace('<namedCollection name="microos_base_zypper"/>', ''), expect: /microos_base_zypper/, profile: 'microos-x86_64' },
    { name: 'fuse2', edit: (s) => s.replace('<package name="fuse3"/>', '<package name="fuse"/>'), expect: /fusermount3/, profile: 'debian-qemu' },
    { name: 'rpi-quota', edit: (s) => s.replace('btrfs_quota_groups="false"', 'btrfs_quota_groups="true"'), expect: /quota/, profile: 'microos-rpi' },
    { name: 'rpi-no-atf', edit: (s) => s.replace('<package name="arm-trusted-firmware-rpi4"/>', ''), expect: /arm-trusted-firmware-rpi4/, profile: 'microos-rpi' },
    { name: 'no-writable', edit: (s) => s.replaceAll('<volume name="boot/writable"/>', ''), expect: /boot\/writable/, profile: 'microos-rpi' },
    { name: 'no-etc-subvol', file: 'disk.sh', edit: (s) => s.replace(/^(\s*)\/usr\/libexec\/setup-etc-subvol$/m, '$1true'), expect: /setup-etc-subvol/, profile: 'microos-x86_64' },
    { name: 'rpi-old-uboot-path', file: 'editbootinstall_rpi.sh', edit: (s) => s.replace('cp -a boot/vc/. "$mnt/"', 'cp -a boot/vc/. "$mnt/"\ncp -a boot/u-boot.bin "$mnt/u-boot.bin"'), expect: /boot\/vc/, profile: 'microos-rpi' },
  ];
  for (const c of cases) {
    const dir = await brokenCopy(c.name, c.edit, c.file);
    const [facts] = await profileFacts(dir, [c.profile]);
    const problems = await applianceProblems(dir, facts);
    assert.ok(problems.some((line) => c.expect.test(line)), `${c.name}: ${JSON.stringify(problems)}`);
    // Schema-wise each copy is still valid: only the appliance layer sees these.
    assert.ok((await validateProfile(dir, c.profile)).ok, `${c.name} broke the schema instead`);
  }
});

test('a shell syntax error in a description script is reported', async () => {
  const { scriptSyntaxProblems } = await validate();
  const dir = await brokenCopy('syntax', (s) => s.replace('esac', 'esca'), 'disk.sh');
  const problems = await scriptSyntaxProblems(dir);
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(problems[0], /^disk\.sh: /);
});

// The fstab.script config.sh writes for the MicroOS profiles, run on sample fstabs as KIWI would
// run it (after writing /etc/fstab): the text between the heredoc markers is what ships.
async function fstabScript(): Promise<string> {
  const { KIWI_DIR } = await validate();
  const config = await readFile(path.join(KIWI_DIR, 'config.sh'), 'utf8');
  const body = /<<'FSTAB_SCRIPT'\n([\s\S]*?)\nFSTAB_SCRIPT\n/.exec(config)?.[1];
  assert.ok(body, 'config.sh has no FSTAB_SCRIPT heredoc');
  const file = path.join(tmp, 'fstab.script');
  await writeFile(file, `${body}\n`, { mode: 0o755 });
  return file;
}

test('fstab.script turns the read-only root into ro=vfs and leaves every other line alone', async () => {
  const script = await fstabScript();
  const fstab = path.join(tmp, 'fstab');
  const others = [
    '# / btrfs ro comment stays',
    'UUID=1111 /var btrfs subvol=/@/var,ro 0 0',
    'UUID=1111 /home btrfs subvol=/@/home 0 0',
    'UUID=2222 /boot/efi vfat defaults 0 0',
  ];
  await writeFile(fstab, ['UUID=1111 / btrfs ro,noatime,compress=zstd:1 0 0', ...others, ''].join('\n'));
  await run(script, [], { env: { ...process.env, FSTAB: fstab } });
  const lines = (await readFile(fstab, 'utf8')).trimEnd().split('\n');
  assert.is(lines[0], 'UUID=1111 / btrfs ro=vfs,noatime,compress=zstd:1 0 0');
  assert.equal(lines.slice(1), others);
  // Running twice changes nothing more (KIWI runs it once, but a rebuild must not stack "=vfs").
  await run(script, [], { env: { ...process.env, FSTAB: fstab } });
  assert.is((await readFile(fstab, 'utf8')).split('\n')[0], 'UUID=1111 / btrfs ro=vfs,noatime,compress=zstd:1 0 0');
});

test('fstab.script leaves a read-write root as it is', async () => {
  const script = await fstabScript();
  const fstab = path.join(tmp, 'fstab-rw');
  const text = 'UUID=3333 / ext4 defaults,errors=remount-ro 0 1\n';
  await writeFile(fstab, text);
  await run(script, [], { env: { ...process.env, FSTAB: fstab } });
  assert.is(await readFile(fstab, 'utf8'), text);
});

test.run();
