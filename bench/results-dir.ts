// Where a bench writes its dated results: bench/results, or PICCOLO_BENCH_RESULTS_DIR for a trial
// run that is not to be committed.
import path from 'node:path';
import { REPO_ROOT } from '../image/bundle.js';

export const resultsDir = (env = process.env): string => env.PICCOLO_BENCH_RESULTS_DIR || path.join(REPO_ROOT, 'bench', 'results');
