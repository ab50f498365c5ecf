// An image pull's progress summed from Podman's compat stream (lines as Podman 4.3 sends them),
// and the throttle that keeps job events to a few a second.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PullTracker, throttled } from '../../services/daemon/apps/pull-progress.js';

test('bytes and layers add up as the stream advances; the end says done', () => {
  const tracker = new PullTracker('127.0.0.1:5000/app:1');
  tracker.add({ status: 'Pulling fs layer', progressDetail: {}, id: '7b850740b683' });
  assert.equal(tracker.progress, { image: '127.0.0.1:5000/app:1', currentBytes: 0, totalBytes: 0, layersDone: 0, layersTotal: 1, done: false });
  tracker.add({ status: 'Downloading', progressDetail: { current: 4204544, total: 13086211 }, id: '7b850740b683' });
  tracker.add({ status: 'Pulling fs layer', progressDetail: {}, id: '8b7f2ce359b2' });
  assert.equal(tracker.progress, { image: '127.0.0.1:5000/app:1', currentBytes: 4204544, totalBytes: 13086211, layersDone: 0, layersTotal: 2, done: false });
  tracker.add({ status: 'Downloading', progressDetail: { current: 12576768, total: 13086211 }, id: '7b850740b683' });
  tracker.add({ status: 'Download complete', progressDetail: {}, id: '7b850740b683' });
  tracker.add({ status: 'Download complete', progressDetail: {}, id: '8b7f2ce359b2' });
  // Podman repeats the last "Download complete"; it counts once.
  tracker.add({ status: 'Download complete', progressDetail: {}, id: '8b7f2ce359b2' });
  tracker.finish();
  assert.equal(tracker.progress, { image: '127.0.0.1:5000/app:1', currentBytes: 13086211, totalBytes: 13086211, layersDone: 2, layersTotal: 2, done: true });
  assert.is(tracker.error, undefined);
});

test('an error line (sent with HTTP 200) is kept as the error', () => {
  const tracker = new PullTracker('x');
  tracker.add({ progressDetail: {}, errorDetail: { message: 'reading manifest nope: manifest unknown' }, error: 'reading manifest nope: manifest unknown' });
  assert.is(tracker.error, 'reading manifest nope: manifest unknown');
  assert.is(tracker.progress.layersTotal, 0);
});

test('throttled: the first call goes at once, later ones at most once per interval, the last one is never lost', async () => {
  const seen: number[] = [];
  const gate = throttled((value: number) => seen.push(value), 40);
  gate.push(1);
  gate.push(2);
  gate.push(3);
  assert.equal(seen, [1]);
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(seen, [1, 3], 'the latest value, once the interval is over');
  gate.push(4);
  gate.flush();
  assert.equal(seen, [1, 3, 4]);
  gate.flush();
  assert.equal(seen, [1, 3, 4], 'nothing pending: flush does nothing');
});

test.run();
