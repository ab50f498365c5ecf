// The offline catalog: app templates shipped with the device. The templates arrive as text
// (templates.ts embeds them in the bundle) so this module runs anywhere, tests included; each is
// parsed once, with the same parser as an uploaded app.yaml, on the catalog's first use: parsing all
// of them at start cost the daemon ~90 ms of CPU here (several times that under the guest's TCG)
// for a screen most starts never open. A broken shipped template fails make test
// (test/unit/app-spec-catalog.test.ts parses every one), and any template the first use.
// A template's passwords are placeholders (${DB_PASSWORD}) that each install fills with the app's
// own generated secret, as an imported stack's are: no two devices share a database password.
import { NotFoundError } from '../../../common/errors.js';
import { isSecretName, SecretBox } from '../spec/import/secrets.js';
import { parseAppSpec } from '../spec/validate.js';
import type { AppSpec } from '../spec/types.js';

export interface CatalogTemplate {
  /** The template's file name, for messages. */
  file: string;
  description: string;
  /** The portal's catalog groups apps by it; templates without one land in "Other". */
  category?: string;
  text: string;
}

export interface CatalogEntry {
  name: string;
  description: string;
  category: string;
  spec: AppSpec;
  /** The app.yaml as shipped, for people to read or adapt. */
  text: string;
}

/** What installing a template uses: its spec with the secrets filled in, and the secrets made for it. */
export interface CatalogInstance {
  spec: AppSpec;
  /** Made by this call, not yet kept; the caller keeps them with the app (AppSecretStore). */
  secrets: Record<string, string>;
}

/** ${NAME} where NAME is a secret's name (…_PASSWORD, …_SECRET_KEY); any other $ stays as written. */
const SECRET_PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export interface Catalog {
  listCatalog(): CatalogEntry[];
  /** Throws NotFoundError for a name the catalog does not have. */
  catalogEntry(name: string): CatalogEntry;
  /**
   * The template made for this device: each secret placeholder replaced by the app's kept secret,
   * or a new one (returned in secrets, the same value wherever the template names it).
   */
  instantiate(name: string, kept?: Readonly<Record<string, string>>, random?: (bytes: number) => Buffer): CatalogInstance;
}

export function createCatalog(templates: readonly CatalogTemplate[]): Catalog {
  let parsed: Map<string, CatalogEntry> | undefined;
  const entries = () => (parsed ??= parseTemplates(templates));
  const catalogEntry = (name: string): CatalogEntry => {
    const entry = entries().get(name);
    if (!entry) throw new NotFoundError(`no catalog app named ${name}`);
    return entry;
  };
  return {
    listCatalog: () => [...entries().values()],
    catalogEntry,
    instantiate(name, kept = {}, random) {
      const { text } = catalogEntry(name);
      const box = new SecretBox(kept, random);
      const filled = text.replace(SECRET_PLACEHOLDER, (placeholder, variable: string) => (isSecretName(variable) ? box.get(variable) : placeholder));
      return { spec: parseAppSpec(filled), secrets: box.generated };
    },
  };
}

function parseTemplates(templates: readonly CatalogTemplate[]): Map<string, CatalogEntry> {
  const entries = new Map<string, CatalogEntry>();
  for (const { file, description, category = 'Other', text } of templates) {
    let spec: AppSpec;
    try {
      spec = parseAppSpec(text);
    } catch (err) {
      throw new Error(`catalog template ${file} is invalid: ${JSON.stringify((err as { details?: unknown }).details ?? (err as Error).message)}`);
    }
    if (entries.has(spec.name)) throw new Error(`catalog template ${file}: the name ${spec.name} is used twice`);
    entries.set(spec.name, { name: spec.name, description, category, spec, text });
  }
  return entries;
}
