// Where the wizard is, kept for this tab (sessionStorage), so a reload resumes at the right step
// and the steps after the password (remote access, done) still show once the device is set up.
export const SETUP_PROGRESS_KEY = 'piccolo.setup';

export function wizardInProgress(): boolean {
  return sessionStorage.getItem(SETUP_PROGRESS_KEY) !== null;
}
