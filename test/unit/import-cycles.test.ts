// No import circles among the services' modules (type-only imports count too: a circle of types
// still ties the modules' meaning together). E.g. api/events.ts → api/routes.ts → apps-host.ts →
// api/events.ts was one, broken by api/request.ts. A circle is named module by module.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../image/bundle.js';

const SERVICES = path.join(REPO_ROOT, 'services');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sources(full);
    return /\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** Each module's relative imports and re-exports, resolved to files. */
function importGraph(files: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gm)].flatMap((match) => {
      const base = path.resolve(path.dirname(file), match[1]!).replace(/\.js$/, '');
      const found = ['.ts', '.tsx', '/index.ts'].map((ext) => base + ext).find((candidate) => existsSync(candidate));
      return found ? [found] : [];
    });
    graph.set(file, targets);
  }
  return graph;
}

/** Strongly connected components of more than one module (Tarjan), each as a path of names. */
function circles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(path.relative(SERVICES, w));
    } while (w !== v);
    if (component.length > 1) found.push(component.reverse());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

test('the finder sees a circle when there is one', () => {
  const graph = new Map([['/s/a.ts', ['/s/b.ts']], ['/s/b.ts', ['/s/c.ts']], ['/s/c.ts', ['/s/a.ts']], ['/s/d.ts', ['/s/a.ts']]]);
  assert.is(circles(graph).length, 1);
  assert.is(circles(graph)[0]!.length, 3);
});

test('no module of services/ imports itself through others', () => {
  const graph = importGraph(sources(SERVICES));
  assert.ok(graph.size > 100, `${graph.size} modules read`);
  assert.ok([...graph.values()].some((targets) => targets.length > 0), 'imports were resolved');
  assert.equal(circles(graph).map((circle) => circle.join(' → ')), []);
});

test.run();
