// The browser script is bundled as text (esbuild loader '.client.js': 'text' in image/bundle.ts).
declare const script: string;
export default script;
