// `node -r guru-meditation/register app.js`: set up from environment
// variables alone. In worker threads (which inherit -r) it only loads the
// library (and so the addon), so their stacks can be asked for.
import { isMainThread } from 'node:worker_threads'

try {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { setupAutorun } = require('./index') as typeof import('./index')
  const { loadAddon } = require('./native') as typeof import('./native')
  /* eslint-enable @typescript-eslint/no-require-imports */
  // The process's main thread has the pid for its tid.
  if (loadAddon().info().tid === process.pid) setupAutorun()
} catch (err) {
  // One line saying what is wrong (no binary for this Node, a bad option),
  // on the main thread; a worker leaves it to the main thread.
  if (isMainThread) {
    process.stderr.write(`${(err as Error).message}\n`)
    process.exit(1)
  }
}
