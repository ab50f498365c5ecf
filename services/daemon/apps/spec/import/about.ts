// What an import says beyond the spec: the store's words about the app, and the main listener a
// store form (Umbrel's app_proxy, CasaOS's port_map) names. Types only, shared by compose.ts and
// the store forms without an import circle.
import type { ListenerInput } from '../types.js';

/** What the app stores say about the app, for the install screen. */
export interface AppAbout {
  source: 'compose' | 'umbrel' | 'casaos';
  title?: string;
  tagline?: string;
  description?: string;
  icon?: string;
  category?: string;
  developer?: string;
  website?: string;
  version?: string;
  /** The path to open on the main listener ("/admin"). */
  path?: string;
  defaultUsername?: string;
  defaultPassword?: string;
}

export interface MainListener {
  service: string;
  port: number;
  flow?: 'tcp' | 'tls';
  protocol?: ListenerInput['protocol'];
}
