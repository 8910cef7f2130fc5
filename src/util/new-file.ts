import fs from 'node:fs'

const CREATE_NEW = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW

/**
 * How every file of the library is created (native/util/proc.h,
 * kNewFileFlags, likewise): a new file, O_EXCL failing on anything there (a
 * planted symlink included), never through a link, mode 0600. Its descriptor.
 */
export function openNew (file: string): number {
  return fs.openSync(file, CREATE_NEW, 0o600)
}
