// esbuild's text loader turns these imports into strings (see image/bundle.ts).
declare module '*.html' {
  const text: string;
  export default text;
}

declare module '*.yaml' {
  const text: string;
  export default text;
}

declare module '*.css' {
  const text: string;
  export default text;
}
