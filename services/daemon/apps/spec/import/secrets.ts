// Per-app generated secrets (Umbrel's APP_PASSWORD and APP_SEED, and any ${DB_PASSWORD}-style
// variable a stack leaves for its installer to fill). Made once per app and kept in the control
// store, so an update or a re-import gives the database the password it was initialised with.
// Purged with the app's data, never before.
import { randomBytes } from 'node:crypto';
import type { ControlDocument } from '../../../control-document.js';
import type { ControlStore } from '../../../store/store.js';

/** Variables whose value, when the file gives none, is a secret Piccolo makes up for the app. */
const SECRET_NAME = /(?:^|_)(?:PASSWORD|PASSWD|PASS|PWD|SECRET|SECRET_KEY|SECRETKEY|ENCRYPTION_KEY|JWT_KEY|SESSION_KEY|SALT|SEED|TOKEN)$/i;

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/**
 * Hands out an app's secrets during one import: the kept one when the app has it, else a new one,
 * remembered so that every use in the file gets the same value and the caller can keep it.
 */
export class SecretBox {
  private readonly made: Record<string, string> = {};

  constructor(
    private readonly kept: Readonly<Record<string, string>> = {},
    private readonly random: (bytes: number) => Buffer = randomBytes,
  ) {}

  get(name: string): string {
    const existing = this.kept[name] ?? this.made[name];
    if (existing !== undefined) return existing;
    // Hex: every app accepts it in a URL, a shell or a config file without quoting. A seed is 256 bits.
    const value = this.random(/SEED$/i.test(name) ? 32 : 16).toString('hex');
    this.made[name] = value;
    return value;
  }

  /** The secrets this import made that the app did not have yet; keep them on install. */
  get generated(): Record<string, string> {
    return { ...this.made };
  }
}

/** The control store's appSecrets, by app name. */
export class AppSecretStore {
  constructor(private readonly store: () => ControlStore<ControlDocument>) {}

  kept(app: string): Record<string, string> {
    return { ...(this.store().data.appSecrets?.[app] ?? {}) };
  }

  /** Adds what is new; a secret the app already has is never replaced. */
  async keep(app: string, secrets: Record<string, string>): Promise<void> {
    if (Object.keys(secrets).length === 0) return;
    await this.store().commit((draft) => {
      const all = (draft.appSecrets ??= {});
      all[app] = { ...secrets, ...all[app] };
    });
  }

  /** With the app's data (uninstall with purge): the data the secrets opened is gone too. */
  async forget(app: string): Promise<void> {
    if (!this.store().data.appSecrets?.[app]) return;
    await this.store().commit((draft) => {
      delete draft.appSecrets![app];
    });
  }
}
