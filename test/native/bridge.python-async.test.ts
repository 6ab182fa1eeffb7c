import { join } from 'node:path';

import { describeRuntime } from './runtime-suite.js';
import { fixtures, repoRoot } from './helpers.js';

// The shared suite through Python's event loop: the probes as `async def`
// handlers (fixtures/handlers/python-async/probe.py, same keys).
describeRuntime('python', undefined, {
  model: 'async',
  handlersDir: [join(fixtures, 'handlers', 'python-async'), join(repoRoot, 'handlers', 'python')],
});
