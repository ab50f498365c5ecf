// The control store's document: the device's own control data (app specs, port allocations,
// settings arrive with their issues). Each schema change adds a migration from the previous version.
export const CONTROL_SCHEMA_VERSION = 1;

export interface ControlDocument {
  device: { createdAt: string };
}

export function initialControlDocument(): ControlDocument {
  return { device: { createdAt: new Date().toISOString() } };
}

/** CONTROL_MIGRATIONS[i] turns a version i+1 document into version i+2. */
export const CONTROL_MIGRATIONS: ((doc: unknown) => unknown)[] = [];
