import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { field, loadConfig, loadServiceConfig, parseList, parseListen, parsePositiveInt } from '../../services/common/config.js';
import { ConfigError } from '../../services/common/errors.js';
import { thrown } from '../support/assertions.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-config-'));
const spec = {
  listen: field('X_LISTEN', parseListen, parseListen('127.0.0.1:80')),
  workers: field('X_WORKERS', parsePositiveInt, 2),
  names: field('X_NAMES', parseList),
};

const problemsOf = (fn: () => unknown): string[] => thrown(fn, ConfigError).problems;

test('parseListen reads host:port, [v6]:port and :port', () => {
  assert.equal(parseListen('0.0.0.0:80'), { host: '0.0.0.0', port: 80 });
  assert.equal(parseListen('[::1]:4040'), { host: '::1', port: 4040 });
  assert.equal(parseListen(':0'), { host: '0.0.0.0', port: 0 });
  assert.throws(() => parseListen('localhost'), /host:port/);
  assert.throws(() => parseListen('a:70000'), /0-65535/);
});

test('environment wins over the file, the file over defaults', () => {
  const file = path.join(dir, 'a.json');
  writeFileSync(file, JSON.stringify({ X_WORKERS: 5, X_NAMES: 'a, b', X_LISTEN: '1.2.3.4:9' }));
  const config = loadConfig(spec, { env: { X_LISTEN: '127.0.0.1:81' }, file });
  assert.equal(config, { listen: { host: '127.0.0.1', port: 81 }, workers: 5, names: ['a', 'b'] });
});

test('a missing file is fine; required values without default are reported', () => {
  const problems = problemsOf(() => loadConfig(spec, { env: {}, file: path.join(dir, 'missing.json') }));
  assert.equal(problems, ['X_NAMES: required']);
});

test('every problem is named at once, with the bad value', () => {
  const problems = problemsOf(() => loadConfig(spec, { env: { X_LISTEN: 'nope', X_WORKERS: '-1', X_NAMES: 'a' } }));
  assert.equal(problems, ['X_LISTEN: must be host:port (got "nope")', 'X_WORKERS: must be a positive integer (got "-1")']);
});

test('a malformed file or an unknown key stops the service', () => {
  const bad = path.join(dir, 'bad.json');
  writeFileSync(bad, '{ not json');
  assert.match(problemsOf(() => loadConfig(spec, { env: { X_NAMES: 'a' }, file: bad })).join(), /not valid JSON/);
  writeFileSync(bad, JSON.stringify({ X_NAMSE: 'a', X_WORKERS: [1] }));
  const problems = problemsOf(() => loadConfig(spec, { env: { X_NAMES: 'a' }, file: bad }));
  assert.match(problems[0]!, /unknown key X_NAMSE/);
  assert.match(problems[1]!, /X_WORKERS must be a string, number or boolean/);
});

test('loadServiceConfig adds the shared settings and the per-service file', () => {
  const file = path.join(dir, 'svc.json');
  writeFileSync(file, JSON.stringify({ PICCOLO_LOG_LEVEL: 'debug', X_NAMES: 'x' }));
  const config = loadServiceConfig('svc', spec, { PICCOLO_CONFIG_FILE: file });
  assert.is(config.configFile, file);
  assert.is(config.logLevel, 'debug');
  assert.is(config.healthSocket, '/run/piccolo-health/report.sock');
  assert.equal(config.names, ['x']);
  assert.is(loadServiceConfig('svc', { a: field('A', String, 'z') }, {}).configFile, '/etc/piccolo/svc.json');
});

test.run();
