// `node -r guru-meditation/register app.js`: set up from environment
// variables alone. In worker threads (which inherit -r) it only loads the
// library (and so the addon), so their stacks can be asked for.
import { isMainThread } from './util/main-thread'

try {
  // Loading the library loads the addon, on any thread.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { setupAutorun } = require('./index') as typeof import('./index')
  if (isMainThread()) setupAutorun()
} catch (err) {
  // One line saying what is wrong (no binary for this Node, a bad option),
  // on the main thread; a worker leaves it to the main thread.
  if (isMainThread()) {
    process.stderr.write(`${(err as Error).message}\n`)
    process.exit(1)
  }
}
