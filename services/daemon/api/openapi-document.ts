// The OpenAPI document (openapi.yaml beside this file) as data. The daemon bundle receives it
// already parsed, as JSON (image/openapi-build.ts): parsing the YAML at every start cost the daemon
// 100-230 ms of CPU here, several times that under the guest's TCG. Tests and the build read it here.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { OpenApiDocument } from './schema.js';

export const OPENAPI_FILE = new URL('./openapi.yaml', import.meta.url);

export function readOpenApiDocument(): OpenApiDocument {
  return parse(readFileSync(OPENAPI_FILE, 'utf8')) as OpenApiDocument;
}
