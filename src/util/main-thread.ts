import fs from 'node:fs'

/**
 * Whether this JavaScript thread is the process's main thread (its tid is
 * the pid), read from /proc/thread-self: loading worker_threads to ask
 * costs 3 ms of set-up.
 */
export function isMainThread (): boolean {
  try {
    // Both read from /proc: a /proc of another pid namespace (not remounted
    // after unshare) names this process by another pid than process.pid.
    const self = fs.readlinkSync('/proc/self')
    return fs.readlinkSync('/proc/thread-self') === `${self}/task/${self}`
  } catch {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('node:worker_threads') as typeof import('node:worker_threads')).isMainThread
  }
}
