// The offline catalog's templates, embedded as text by esbuild's '.yaml' text loader
// (image/bundle.ts). Only the bundle can import .yaml files, so only the composition root imports
// this module and hands CATALOG_TEMPLATES to createCatalog; tests bundle it the same way.
import type { CatalogTemplate } from './catalog.js';
import dashboard from './dashboard.yaml';
import notes from './notes.yaml';
import staticSite from './static-site.yaml';
import whoami from './whoami.yaml';

export const CATALOG_TEMPLATES: readonly CatalogTemplate[] = [
  { file: 'static-site.yaml', description: 'A static web site served by nginx', text: staticSite },
  { file: 'notes.yaml', description: 'Memos: private notes', text: notes },
  { file: 'dashboard.yaml', description: 'Homer: a start page for your apps', text: dashboard },
  { file: 'whoami.yaml', description: 'whoami: a public echo endpoint for testing remote access', text: whoami },
];
