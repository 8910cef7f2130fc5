// Green Threads: Node's green threads are its pending async work. Until the
// tracker lands, the section says what it will hold.
import type { GreenThreads } from '../model'

export function buildGreenThreads (): GreenThreads {
  return { note: 'pending async resources and promises are not tracked yet' }
}
