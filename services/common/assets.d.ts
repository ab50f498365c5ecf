// esbuild's text loader turns this import into a string (see image/bundle.ts).
declare module '*.yaml' {
  const text: string;
  export default text;
}

// The portal, built for the browser and precompressed by image/portal-build.ts.
declare module 'piccolo:portal' {
  const bundle: import('../daemon/api/portal-assets.js').PortalBundle;
  export default bundle;
}

// The OpenAPI document, parsed at build time by image/openapi-build.ts.
declare module 'piccolo:openapi' {
  const document: import('../daemon/api/schema.js').OpenApiDocument;
  export default document;
}
