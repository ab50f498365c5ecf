// Where an app comes from (the body of install, preview and update) and how the daemon's refusal
// of it reads: an invalid app.yaml or compose file answers 400 with one "path: problem" line per
// fault, which the form shows beside the text they are about.
import type { ApiError } from '../../api/client.js';

export type AppSource =
  | { spec: string }
  | { compose: string; service?: string; env?: string; env_files?: Record<string, string> }
  | { umbrel: { manifest: string; compose: string }; env?: string; env_files?: Record<string, string> }
  | { catalog: string };

/** The "path: problem" lines of a refused source, or undefined for any other error. */
export function sourceProblems(error: ApiError | undefined): string[] | undefined {
  // 409 too: a listener whose host name another app holds names the listener.
  if (!error || (error.status !== 400 && error.status !== 409)) return undefined;
  const details = Array.isArray(error.details) ? error.details.filter((line): line is string => typeof line === 'string') : [];
  if (details.length) return details;
  return error.status === 400 && Object.keys(error.fields).length ? [error.message] : undefined;
}

/** The problem lines as one field error, each on its own line. */
export function problemText(problems: string[] | undefined): string | undefined {
  if (!problems) return undefined;
  // Counted first, so that each line keeps its path exactly as the daemon wrote it.
  return `${problems.length === 1 ? '1 problem' : `${problems.length} problems`}:\n${problems.join('\n')}`;
}
