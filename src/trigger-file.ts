// The trigger file (fileEventHandler): created at setup when missing.
import fs from 'node:fs'
import { OptionError } from './options'
import { openNew } from './util/new-file'

/** Creates the trigger file if missing; true when this call created it. `name` says where it was given. */
export function ensureTriggerFile (file: string, name: string): boolean {
  try {
    fs.closeSync(openNew(file))
    return true
  } catch (err) {
    // Already there: resolveOptions checked it is a regular file.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw new OptionError(name, `cannot create ${file}: ${(err as Error).message}`)
  }
}
