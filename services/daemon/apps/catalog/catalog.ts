// The offline catalog: app templates shipped with the device. The templates arrive as text
// (templates.ts embeds them in the bundle) so this module runs anywhere, tests included; each is
// parsed once, with the same parser as an uploaded app.yaml, so a broken template fails at start.
import { NotFoundError } from '../../../common/errors.js';
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

export interface Catalog {
  listCatalog(): CatalogEntry[];
  /** Throws NotFoundError for a name the catalog does not have. */
  catalogEntry(name: string): CatalogEntry;
}

export function createCatalog(templates: readonly CatalogTemplate[]): Catalog {
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
  return {
    listCatalog: () => [...entries.values()],
    catalogEntry(name) {
      const entry = entries.get(name);
      if (!entry) throw new NotFoundError(`no catalog app named ${name}`);
      return entry;
    },
  };
}
