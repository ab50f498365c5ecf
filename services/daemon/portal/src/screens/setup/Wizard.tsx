// First boot: welcome, claim code, recovery key, admin password, remote access (optional), done.
// The step lives in sessionStorage (progress.ts), so a reload resumes where the person was; the
// header shows "Step N of 6". Restore from a backup is the other way through (welcome, claim code,
// restore, done: "Step N of 4"), chosen on the welcome step.
import { useEffect, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso/router';
import { startSession } from '../../api/session.js';
import { device } from '../../api/session.js';
import { ClaimStep } from './ClaimStep.js';
import { DoneStep } from './DoneStep.js';
import { PasswordStep } from './PasswordStep.js';
import { RecoveryStep } from './RecoveryStep.js';
import { RemoteStep } from './RemoteStep.js';
import { RestoreStep } from './RestoreStep.js';
import { WelcomeStep } from './WelcomeStep.js';
import { RESTORE_PATH, SETUP_PATH, clearProgress, loadProgress, saveProgress, wizardStepLabel, type SetupProgress } from './progress.js';

export const EXPIRED_MESSAGE =
  'The setup session ended: it lasts 30 minutes, and a restart of the device ends it too. Enter the claim code again. You will get a new recovery key: the one shown before will not work.';

/** Where a (re)loaded wizard starts: the saved step, unless the device or the clock says otherwise. */
function resume(): { progress: SetupProgress; notice?: string } | undefined {
  const saved = loadProgress();
  if (device.value?.state !== 'unclaimed') {
    // Set up already: only the steps after the password remain (or none, if another tab did it).
    return saved && (saved.step === 'remote' || saved.step === 'done') ? { progress: { step: saved.step } } : undefined;
  }
  if (!saved || saved.step === 'remote' || saved.step === 'done') return { progress: { step: 'welcome' } };
  if (saved.step === 'recovery' || saved.step === 'password') {
    const usable = saved.setupToken && saved.recoveryKey && (saved.expiresAt ?? 0) > Date.now();
    if (!usable) return { progress: { step: 'claim' }, notice: EXPIRED_MESSAGE };
  }
  if (saved.step === 'restore' && !(saved.setupToken && (saved.expiresAt ?? 0) > Date.now())) return { progress: { step: 'claim', restore: true }, notice: RESTORE_EXPIRED_MESSAGE };
  return { progress: saved };
}

export const RESTORE_EXPIRED_MESSAGE = 'The setup session ended: it lasts 30 minutes, and a restart of the device ends it too. Enter the claim code again to restore.';

export default function Wizard() {
  const { route } = useLocation();
  const [start] = useState(resume);
  const [progress, setProgress] = useState<SetupProgress>(start?.progress ?? { step: 'done' });
  const [notice, setNotice] = useState(start?.notice);
  const go = (next: SetupProgress, message?: string) => {
    saveProgress(next);
    setProgress(next);
    setNotice(message);
  };

  useEffect(() => {
    if (!start) {
      clearProgress();
      route('/', true);
      return;
    }
    saveProgress(start.progress);
    return () => (wizardStepLabel.value = undefined);
  }, []);
  useEffect(() => {
    const path = progress.restore ? RESTORE_PATH : SETUP_PATH;
    wizardStepLabel.value = `Step ${path.indexOf(progress.step) + 1} of ${path.length}`;
  }, [progress.step, progress.restore]);
  if (!start) return null;

  const { setupToken = '', recoveryKey = '', expiresAt } = progress;
  switch (progress.step) {
    case 'welcome':
      return <WelcomeStep onStart={() => go({ step: 'claim' })} onRestore={() => go({ step: 'claim', restore: true })} />;
    case 'claim':
      return (
        <ClaimStep
          notice={notice}
          onBack={() => go({ step: 'welcome' })}
          onClaimed={(reply) =>
            progress.restore
              ? // The new recovery key the claim offers is not kept: the backup brings its own.
                go({ step: 'restore', restore: true, setupToken: reply.setupToken, expiresAt: Date.now() + reply.expiresInSeconds * 1000 })
              : go({ step: 'recovery', setupToken: reply.setupToken, recoveryKey: reply.recoveryKey, expiresAt: Date.now() + reply.expiresInSeconds * 1000 })
          }
        />
      );
    case 'restore':
      return (
        <RestoreStep
          setupToken={setupToken}
          onBack={() => go({ step: 'welcome' })}
          onExpired={() => go({ step: 'claim', restore: true }, RESTORE_EXPIRED_MESSAGE)}
          onRestored={(reply) => {
            go({ step: 'done', restore: true, restoredApps: reply.apps });
            startSession(reply);
          }}
        />
      );
    case 'recovery':
      return <RecoveryStep recoveryKey={recoveryKey} onContinue={() => go({ step: 'password', setupToken, recoveryKey, expiresAt })} />;
    case 'password':
      return (
        <PasswordStep
          setupToken={setupToken}
          onBack={() => go({ step: 'recovery', setupToken, recoveryKey, expiresAt })}
          onExpired={() => go({ step: 'claim' }, EXPIRED_MESSAGE)}
          onSetUp={(reply) => {
            // Saved first: the shell lets a signed-in browser stay on /setup only while a wizard runs.
            go({ step: 'remote' });
            startSession(reply);
          }}
        />
      );
    case 'remote':
      return <RemoteStep onDone={() => go({ step: 'done' })} />;
    case 'done':
      return (
        <DoneStep
          restoredApps={progress.restore ? (progress.restoredApps ?? []) : undefined}
          onFinish={() => {
            clearProgress();
            route('/', true);
          }}
        />
      );
  }
}
