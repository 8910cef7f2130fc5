// `node -r guru-meditation/register app.js`: set up from environment
// variables alone. In worker threads (which inherit -r) it only loads the
// addon, so their stacks can be asked for.
import { isMainThread } from 'node:worker_threads'
import { setupAutorun } from './index'

if (isMainThread) {
  try {
    setupAutorun()
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`)
    process.exit(1)
  }
}
