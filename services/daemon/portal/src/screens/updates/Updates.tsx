// OS updates (MicroOS transactional-update): what runs now and next, applying an update with its
// progress (live from the os.update events, so it survives leaving the page), reboot, rollback to
// a chosen snapshot, and a notice when the last update was rolled back. An image without
// transactional-update says so and offers nothing.
import { useState } from 'preact/hooks';
import { api, type ApiError } from '../../api/client.js';
import { useEvent } from '../../api/events.js';
import { asApiError, useResource } from '../../api/use-resource.js';
import type { OsSnapshot, OsUpdateEvent, OsUpdateProgress, OsUpdateStatus } from '../../../../updates/types.js';
import { formatTime, relativeTime } from '../../format.js';
import { Alert, Notice } from '../../ui/Alert.js';
import { Badge } from '../../ui/Badge.js';
import { Button } from '../../ui/Button.js';
import { ConfirmDialog } from '../../ui/ConfirmDialog.js';
import { Loaded } from '../../ui/Loading.js';
import { Card, Facts, Page } from '../../ui/Page.js';
import { ProgressBar } from '../../ui/ProgressBar.js';
import { lastRunText, PHASE_WORDS, RESULT_WORDS, rolledBackText, type AvailableStatus } from './words.js';

export default function Updates() {
  const status = useResource((signal) => api.get<OsUpdateStatus>('/api/v1/updates/os', { signal }));
  const [progress, setProgress] = useState<OsUpdateProgress>();
  useEvent<OsUpdateEvent>('os.update', ({ data }) => {
    if (data.state === 'running') {
      setProgress(data.progress);
      status.set((s) => (s?.available && !s.running ? { ...s, running: { run: data.run, progress: data.progress } } : s));
    } else {
      setProgress(undefined);
      status.reload();
    }
  });
  return (
    <Page title="OS updates" intro="The device's operating system lives in snapshots: an update goes into a new one, which starts at the next reboot, and you can always go back.">
      <p>
        <a href="/system">Back to System</a>
      </p>
      <Loaded resource={status} what="the OS update status">
        {(s) =>
          s.available ? (
            <Available status={s} progress={progress ?? s.running?.progress} reload={status.reload} />
          ) : (
            <Notice title="Not available on this image">
              <p>{s.reason}</p>
              <p class="muted">Apps update on their own pages.</p>
            </Notice>
          )
        }
      </Loaded>
    </Page>
  );
}

function Available({ status, progress, reload }: { status: AvailableStatus; progress?: OsUpdateProgress; reload: () => void }) {
  const rolledBack = rolledBackText(status);
  return (
    <>
      {rolledBack && (
        <Notice tone="warn" title="The last update was rolled back">
          <p>{rolledBack}</p>
        </Notice>
      )}
      <div class="grid updates">
        <Card title="This system" id="os-status">
          <Facts
            items={[
              ['Running snapshot', status.currentSnapshot ?? 'unknown'],
              ['Next boot starts', status.defaultSnapshot === undefined ? 'unknown' : status.rebootPending ? `snapshot ${status.defaultSnapshot} (after a reboot)` : `snapshot ${status.defaultSnapshot} (the same)`],
              ['Root file system', status.root ? `${status.root.fstype}, ${status.root.readOnly ? 'read-only' : 'writable'}` : 'unknown'],
              ['transactional-update', status.version ?? 'unknown'],
              ['Last update', <LastRun status={status} />],
            ]}
          />
          <Reboot pending={status.rebootPending} next={status.defaultSnapshot} back={status.rolledBack !== undefined} blocked={status.running !== undefined} />
        </Card>
        <ApplyCard status={status} progress={progress} reload={reload} />
      </div>
      <Snapshots status={status} reload={reload} />
      <Card title="Update log" id="os-journal">
        {status.unit && (
          <p class="muted">
            The last lines of the last run's journal ({status.unit.name}, {status.unit.activeState}).
          </p>
        )}
        {status.journal.length ? <pre class="journal" tabIndex={0} aria-label="Update log">{status.journal.join('\n')}</pre> : <p>Nothing logged yet.</p>}
      </Card>
    </>
  );
}

function LastRun({ status }: { status: AvailableStatus }) {
  const run = status.lastRun;
  if (!run) return <span>{lastRunText(run)}</span>;
  const at = run.finishedAt ?? run.startedAt;
  // Its own words ("reboot to start it") no longer hold once its snapshot was rolled back.
  const undone = run.snapshot !== undefined && status.rolledBack?.snapshot === run.snapshot;
  return (
    <span data-testid="os-last-run">
      {undone ? <Badge state="interrupted" label="rolled back" /> : <Badge state={run.result} label={RESULT_WORDS[run.result]} />} <time dateTime={at} title={formatTime(at)}>{relativeTime(at)}</time>
      <span class="muted"> · {undone ? `snapshot ${run.snapshot} was rolled back` : run.message}</span>
    </span>
  );
}

function ApplyCard({ status, progress, reload }: { status: AvailableStatus; progress?: OsUpdateProgress; reload: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  async function apply() {
    setBusy(true);
    setError(undefined);
    try {
      await api.post('/api/v1/updates/os/apply', {});
      reload();
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }
  const running = status.running;
  return (
    <Card title="Update" id="os-apply">
      {running ? (
        <>
          <ProgressBar label={PHASE_WORDS[progress?.phase ?? 'preparing']} value={progress?.percent} max={100} detail={progress?.percent !== undefined ? `${progress.percent} %` : undefined} />
          {progress?.line && <p class="muted mono update-line">{progress.line}</p>}
          <p class="muted">Started {relativeTime(running.run.startedAt)}. The running system is not touched; you may leave this page.</p>
        </>
      ) : (
        <>
          <p>Downloads the newest packages and installs them into a new snapshot. Nothing changes until you reboot into it; a snapshot that does not start properly is rolled back by itself.</p>
          <div class="actions">
            <Button busy={busy} onClick={apply}>
              Check for updates and apply
            </Button>
          </div>
        </>
      )}
      <Alert error={error} />
    </Card>
  );
}

/** back: the snapshot waiting is an older one (a rollback), not a new update. */
function Reboot({ pending, next, back, blocked }: { pending: boolean; next?: number; back: boolean; blocked: boolean }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  const [rebooting, setRebooting] = useState(false);
  async function reboot() {
    setBusy(true);
    setError(undefined);
    try {
      await api.post('/api/v1/updates/os/reboot', { confirm: true });
      setOpen(false);
      setRebooting(true);
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }
  if (rebooting) return <Notice title="The device is rebooting">This page comes back once the device answers again, in a minute or two.</Notice>;
  return (
    <>
      {pending && <p data-testid="os-reboot-pending">{back ? `Reboot to go back to snapshot ${next}.` : `Snapshot ${next} is ready: reboot to start it.`}</p>}
      <div class="actions">
        <Button variant={pending ? 'primary' : 'secondary'} disabled={blocked} onClick={() => (setError(undefined), setOpen(true))}>
          Reboot…
        </Button>
      </div>
      {blocked && <p class="muted">A reboot waits until the update has finished.</p>}
      {open && (
        <ConfirmDialog title="Reboot the device?" actionLabel="Reboot" busy={busy} error={error} onConfirm={reboot} onCancel={() => setOpen(false)}>
          <p>Every app stops and the portal does not answer for a minute or two. {pending ? `The device then starts snapshot ${next}.` : 'The device starts the same snapshot again.'}</p>
        </ConfirmDialog>
      )}
    </>
  );
}

function Snapshots({ status, reload }: { status: AvailableStatus; reload: () => void }) {
  const [target, setTarget] = useState<OsSnapshot>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  async function rollback(snapshot: OsSnapshot) {
    setBusy(true);
    setError(undefined);
    try {
      await api.post('/api/v1/updates/os/rollback', { snapshot: snapshot.number, confirm: String(snapshot.number) });
      setTarget(undefined);
      reload();
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }
  const newestFirst = [...status.snapshots].sort((a, b) => b.number - a.number);
  return (
    <Card title="Snapshots" id="os-snapshots">
      <p class="muted">Rolling back makes a snapshot the one the next boot starts. Newer snapshots stay on disk until the cleanup removes them.</p>
      <div class="table-wrap">
        <table class="stack-table snapshots">
          <caption class="offscreen">Snapshots of the operating system</caption>
          <thead>
            <tr>
              <th scope="col">Snapshot</th>
              <th scope="col">Made</th>
              <th scope="col">Description</th>
              <th scope="col">State</th>
              <th scope="col">
                <span class="offscreen">Action</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {newestFirst.map((snapshot) => (
              <tr key={snapshot.number} data-testid={`snapshot-${snapshot.number}`}>
                <td data-label="Snapshot" class="mono">
                  {snapshot.number}
                </td>
                <td data-label="Made">{snapshot.date ? <time dateTime={snapshot.date}>{formatTime(snapshot.date)}</time> : 'unknown'}</td>
                <td data-label="Description">{snapshot.description || '—'}</td>
                <td data-label="State">{snapshotBadges(snapshot)}</td>
                <td data-label="Action">
                  {!snapshot.default && (
                    <Button variant="secondary" disabled={status.running !== undefined} onClick={() => (setError(undefined), setTarget(snapshot))}>
                      Roll back to {snapshot.number}
                    </Button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {target && (
        <ConfirmDialog
          title={`Roll back to snapshot ${target.number}?`}
          actionLabel="Roll back"
          typeToConfirm={String(target.number)}
          busy={busy}
          error={error}
          onConfirm={() => rollback(target)}
          onCancel={() => setTarget(undefined)}
        >
          <p>
            The device starts snapshot {target.number} ({target.description || 'no description'}) at the next reboot. Changes made to the system after it, updates included, are then not used.
          </p>
        </ConfirmDialog>
      )}
    </Card>
  );
}

function snapshotBadges(snapshot: OsSnapshot) {
  const badges = [
    snapshot.current && <Badge key="running" state="running" label="running" />,
    snapshot.default && <Badge key="next" state="pending" label="next boot" />,
    snapshot.important && <Badge key="kept" state="idle" label="kept" />,
  ].filter(Boolean);
  return badges.length ? badges : null;
}
