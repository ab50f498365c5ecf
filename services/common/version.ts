// The release version, written into the bundles by image/bundle.ts; "dev" when run from source.
declare const __PICCOLO_VERSION__: string | undefined;

export const VERSION: string = typeof __PICCOLO_VERSION__ === 'string' ? __PICCOLO_VERSION__ : 'dev';
