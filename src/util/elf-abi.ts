// The Node ABI a guru-meditation binary was built for, read from its file
// without loading it: native/addon.cc puts an ELF note "GMR" holding
// "node-abi=<NODE_MODULE_VERSION>" there, and the linker puts notes in the
// first page of the file, so one read finds it. Loading a binary of another
// ABI can end the process, so the loader asks first.
import fs from 'node:fs'

const HEAD_BYTES = 4096
const NOTE = Buffer.from('GMR\0node-abi=', 'latin1')

/** The ABI number, or null when the file is no ELF binary with the note (a build from before it, or not ours). */
export function binaryAbi (file: string): number | null {
  let fd: number
  try {
    fd = fs.openSync(file, 'r')
  } catch {
    return null
  }
  try {
    const head = Buffer.alloc(HEAD_BYTES)
    const n = fs.readSync(fd, head, 0, HEAD_BYTES, 0)
    if (n < 64 || head.readUInt32BE(0) !== 0x7f454c46) return null  // "\x7fELF"
    const at = head.subarray(0, n).indexOf(NOTE)
    if (at < 0) return null
    const m = /^\d+/.exec(head.toString('latin1', at + NOTE.length, Math.min(n, at + NOTE.length + 8)))
    return m ? Number(m[0]) : null
  } catch {
    return null
  } finally {
    fs.closeSync(fd)
  }
}
