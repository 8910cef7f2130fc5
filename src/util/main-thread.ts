import fs from 'node:fs'

/**
 * Whether this JavaScript thread is the process's main thread (its tid is
 * the pid), read from /proc/thread-self: loading worker_threads to ask
 * costs 3 ms of set-up.
 */
export function isMainThread (): boolean {
  try {
    return fs.readlinkSync('/proc/thread-self') === `${process.pid}/task/${process.pid}`
  } catch {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('node:worker_threads') as typeof import('node:worker_threads')).isMainThread
  }
}
