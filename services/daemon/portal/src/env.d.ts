// esbuild bundles imported style sheets into the entry's CSS file (image/portal-build.ts).
declare module '*.css';
