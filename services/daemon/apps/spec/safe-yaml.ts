// Parses YAML uploaded by people (app.yaml, docker-compose files) without trusting it: a size cap,
// one document, no tags (which could ask for types other than plain data), and a cap on alias
// expansion so a "billion laughs" document fails fast instead of eating memory.
import { LineCounter, isMap, isSeq, parseDocument, visit, type Node, type YAMLError } from 'yaml';
import { BadRequestError } from '../../../common/errors.js';

export const MAX_YAML_BYTES = 64 * 1024;

/** How many alias expansions a document may make; a YAML bomb needs thousands. */
const MAX_ALIAS_COUNT = 100;

/**
 * Returns the document's root mapping as plain data, or throws BadRequestError(errorMessage,
 * problems) where each problem says where it is.
 */
export function parseYamlMapping(text: string, errorMessage: string): Record<string, unknown> {
  const fail = (problem: string): never => {
    throw new BadRequestError(errorMessage, [problem]);
  };
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_YAML_BYTES) fail(`document: is ${bytes} bytes; the limit is ${MAX_YAML_BYTES}`);

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { schema: 'core', strict: true, uniqueKeys: true, merge: true, prettyErrors: true, lineCounter });
  if (doc.errors.length) throw new BadRequestError(errorMessage, doc.errors.map(describeYamlError));

  const tagged = findTaggedNode(doc);
  if (tagged) fail(`${where(lineCounter, tagged)}: YAML tags such as ${tagged.tag!.replace('tag:yaml.org,2002:', '!!')} are not allowed`);

  if (doc.contents === null) fail('document: is empty');
  if (!isMap(doc.contents)) fail(`document: must be a mapping of fields, not ${isSeq(doc.contents) ? 'a list' : 'a single value'}`);

  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as Record<string, unknown>;
  } catch (err) {
    // yaml throws a ReferenceError when the alias count is exceeded.
    if (err instanceof ReferenceError) fail(`document: aliases expand too much (more than ${MAX_ALIAS_COUNT}); this looks like a YAML bomb`);
    // yaml throws plain Errors for shapes it cannot turn into data ("<<: 5": merge sources must be maps).
    if (err instanceof Error) fail(`document: ${err.message}`);
    throw err;
  }
}

function describeYamlError(error: YAMLError): string {
  const at = error.linePos ? `line ${error.linePos[0].line}, column ${error.linePos[0].col}` : 'document';
  if (error.code === 'MULTIPLE_DOCS') return `${at}: only one YAML document is allowed`;
  if (error.code === 'DUPLICATE_KEY') return `${at}: duplicate key`;
  // With prettyErrors, messages end in " at line L, column C:" and a snippet; the position is already in front.
  return `${at}: ${error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`;
}

/** The first node written with an explicit tag (!foo, !!binary); yaml sets node.tag only for those. */
function findTaggedNode(doc: ReturnType<typeof parseDocument>): Node | undefined {
  let found: Node | undefined;
  visit(doc, {
    Node(_, node) {
      if (!node.tag) return undefined;
      found = node;
      return visit.BREAK;
    },
  });
  return found;
}

function where(lineCounter: LineCounter, node: Node): string {
  if (!node.range) return 'document';
  const { line, col } = lineCounter.linePos(node.range[0]);
  return `line ${line}, column ${col}`;
}
