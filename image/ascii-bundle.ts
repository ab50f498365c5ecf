// Keeps a bundle's source one byte per character in V8. V8 holds a module's whole source text for
// as long as it runs, and a single non-Latin-1 character (an arrow or a section sign in a comment
// esbuild keeps) makes all of it a two-byte string: the daemon's 4 MB bundle then costs 8 MB of heap.
// esbuild escapes every non-ASCII character in code (its default charset), so what is left is in
// comments, where each UTF-16 unit becomes '?' (columns, and so the source map, stay as they are).
// The proof: the same output with comments and whitespace stripped must be ASCII already.
import { transform } from 'esbuild';
import { readFile, writeFile } from 'node:fs/promises';

const NON_ASCII = /[^\x00-\x7f]/;

export async function asciiOnlyBundle(file: string): Promise<void> {
  const code = await readFile(file, 'utf8');
  if (!NON_ASCII.test(code)) return;
  const stripped = (await transform(code, { minifyWhitespace: true, format: 'esm', logLevel: 'silent' })).code;
  const inCode = stripped.match(new RegExp(NON_ASCII, 'g'));
  if (inCode) throw new Error(`${file}: non-ASCII outside comments (${[...new Set(inCode)].join(' ')}); write it as an escape in the source`);
  await writeFile(file, code.replace(new RegExp(NON_ASCII, 'g'), '?'));
}
