// The readers of the OS update tools' output, on the shapes their sources document: snapper's
// --json list (openSUSE/snapper client/Command/ListSnapshots/SnappersData/Json.cc), tukit's
// tab-separated snapshots, findmnt --json, systemctl show, and zypper's progress counters.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { newSnapshotOf, parseFindmnt, parseSnapperJson, parseSystemctlShow, parseTukitSnapshots, progressOf } from '../../services/daemon/updates/parse.js';

const SNAPPER = JSON.stringify({
  root: [
    { subvolume: '/', number: 0, default: false, active: false, type: 'single', 'pre-number': null, date: '', user: 'root', 'used-space': null, cleanup: '', description: 'current', userdata: null },
    { subvolume: '/', number: 1, default: false, active: false, type: 'single', 'pre-number': null, date: '2020-10-19 17:21:41', user: 'root', 'used-space': 131072, cleanup: '', description: 'first root filesystem', userdata: null },
    { subvolume: '/', number: 2, default: false, active: true, type: 'single', 'pre-number': null, date: '2020-10-19 17:25:18', user: 'root', 'used-space': 131072, cleanup: 'number', description: 'after installation', userdata: { important: 'yes' } },
    { subvolume: '/', number: 3, default: true, active: false, type: 'single', 'pre-number': null, date: '2020-11-11T09:42:51', user: 'root', 'used-space': 707620864, cleanup: '', description: 'Snapshot Update of #2', userdata: null },
  ],
});

test('snapper --json list: snapshot 0 (the live file system) left out, flags and UTC dates read', () => {
  assert.equal(parseSnapperJson(SNAPPER), [
    { number: 1, date: '2020-10-19T17:21:41.000Z', description: 'first root filesystem', current: false, default: false, important: false },
    { number: 2, date: '2020-10-19T17:25:18.000Z', description: 'after installation', current: true, default: false, important: true },
    { number: 3, date: '2020-11-11T09:42:51.000Z', description: 'Snapshot Update of #2', current: false, default: true, important: false },
  ]);
  assert.throws(() => parseSnapperJson(JSON.stringify({ home: [] })), /no "root" list/);
});

test('tukit snapshots -f default,active,number,date,description: yes/no flags, a trailing tab', () => {
  const text = 'no\tno\t1\t2026-11-02 09:14:03\tfirst root filesystem\t\nno\tyes\t2\t2026-11-20 03:30:11\tSnapshot Update of #1\t\nyes\tno\t3\t2026-12-01 13:45:55\tSnapshot Update of #2\t\n';
  assert.equal(parseTukitSnapshots(text).map((s) => [s.number, s.current, s.default, s.description]), [
    [1, false, false, 'first root filesystem'],
    [2, true, false, 'Snapshot Update of #1'],
    [3, false, true, 'Snapshot Update of #2'],
  ]);
});

test('findmnt --json: a read-only btrfs root; systemctl show: Key=Value', () => {
  const findmnt = JSON.stringify({ filesystems: [{ source: '/dev/vda3[/@/.snapshots/5/snapshot]', fstype: 'btrfs', options: 'ro,relatime,subvol=/@/.snapshots/5/snapshot' }] });
  assert.equal(parseFindmnt(findmnt), { source: '/dev/vda3[/@/.snapshots/5/snapshot]', fstype: 'btrfs', readOnly: true });
  assert.is(parseFindmnt(JSON.stringify({ filesystems: [{ source: '/dev/sda1', fstype: 'ext4', options: 'rw,relatime,errors=remount-ro' }] }))!.readOnly, false);
  assert.equal(parseSystemctlShow('ActiveState=failed\nResult=timeout\nExecMainStartTimestamp=Tue 2026-12-01 10:00:00 UTC\n'), { ActiveState: 'failed', Result: 'timeout', ExecMainStartTimestamp: 'Tue 2026-12-01 10:00:00 UTC' });
});

test("zypper's counters: downloads the first half, installs the second; other lines say nothing", () => {
  assert.equal(progressOf('Retrieving: kernel-default-6.12.1-1.1.x86_64 (3/12), 140.2 MiB'), { phase: 'downloading', percent: 13, line: 'Retrieving: kernel-default-6.12.1-1.1.x86_64 (3/12), 140.2 MiB' });
  assert.is(progressOf('(12/12) Installing: vim-9.1-1.1.x86_64 ...[done]')!.percent, 100);
  assert.is(progressOf('(6/12) Installing: vim-9.1-1.1.x86_64 ...[done]')!.phase, 'installing');
  assert.is(progressOf('(6/12) Installing: vim-9.1-1.1.x86_64 ...[done]')!.percent, 75);
  assert.is(progressOf("Retrieving repository 'openSUSE-Tumbleweed-Oss' metadata ...[done]"), undefined);
  assert.is(newSnapshotOf('...\nNew default snapshot is #7 (/.snapshots/7/snapshot).\n'), 7);
  assert.is(newSnapshotOf('Nothing to do.'), undefined);
});

test.run();
