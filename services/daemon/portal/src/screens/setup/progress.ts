// Where the wizard is, kept for this tab (sessionStorage), so a reload resumes at the right step
// and the steps after the password (remote access, done) still show once the device is set up.
// Until the password is set the setup token and the recovery key are kept too (a reload must not
// cost the person their claim); from then on only the step.
import { signal } from '@preact/signals';

export const SETUP_PROGRESS_KEY = 'piccolo.setup';

/** The wizard's steps in order, for a new device. */
export const WIZARD_STEPS = ['welcome', 'claim', 'recovery', 'password', 'remote', 'done', 'restore'] as const;
export type WizardStep = (typeof WIZARD_STEPS)[number];
/** The steps each way through the wizard takes: set up anew, or restore from a backup. */
export const SETUP_PATH: readonly WizardStep[] = ['welcome', 'claim', 'recovery', 'password', 'remote', 'done'];
export const RESTORE_PATH: readonly WizardStep[] = ['welcome', 'claim', 'restore', 'done'];

export interface SetupProgress {
  step: WizardStep;
  /** Restoring from a backup (chosen on the welcome step) rather than setting up anew. */
  restore?: boolean;
  /** After a restore: the apps the backup held. */
  restoredApps?: string[];
  setupToken?: string;
  recoveryKey?: string;
  /** When the setup token stops working (ms since the epoch): the daemon keeps it 30 minutes. */
  expiresAt?: number;
}

/** "Step 2 of 6" for the header (the shell passes it to PlainLayout while /setup shows). */
export const wizardStepLabel = signal<string | undefined>(undefined);

export function wizardInProgress(): boolean {
  return sessionStorage.getItem(SETUP_PROGRESS_KEY) !== null;
}

export function loadProgress(): SetupProgress | undefined {
  try {
    const value = JSON.parse(sessionStorage.getItem(SETUP_PROGRESS_KEY) ?? 'null') as SetupProgress | null;
    return value && (WIZARD_STEPS as readonly string[]).includes(value.step) ? value : undefined;
  } catch {
    return undefined;
  }
}

export function saveProgress(progress: SetupProgress): void {
  sessionStorage.setItem(SETUP_PROGRESS_KEY, JSON.stringify(progress));
}

export function clearProgress(): void {
  sessionStorage.removeItem(SETUP_PROGRESS_KEY);
  wizardStepLabel.value = undefined;
}
