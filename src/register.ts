// `node -r guru-meditation/register app.js`: set up from environment
// variables alone. In worker threads (which inherit -r) it only loads the
// addon, so their stacks can be asked for.
import { loadAddon } from './native'
import { setupAutorun } from './index'

// The main thread's tid is the pid; loading the addon (done by ./index on
// every thread) is all a worker needs.
let main: boolean
try {
  main = loadAddon().info().tid === process.pid
} catch {
  // setupAutorun says what is wrong with the addon, on the main thread.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  main = (require('node:worker_threads') as typeof import('node:worker_threads')).isMainThread
}
if (main) {
  try {
    setupAutorun()
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`)
    process.exit(1)
  }
}
