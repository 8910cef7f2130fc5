// The Node ABI a guru-meditation binary was built for, read from its file
// without loading it: native/addon.cc puts an ELF note "GMR" holding
// "node-abi=<NODE_MODULE_VERSION>" there, and the linker puts notes in the
// first page of the file, so one read finds it. Loading a binary of another
// ABI can end the process, so the loader asks first.
import fs from 'node:fs'

const HEAD_BYTES = 4096
const NOTE = Buffer.from('GMR\0node-abi=', 'latin1')

/** The file's first `bytes` bytes (fewer at its end), or null when it cannot be read or is no ELF file. */
function elfHead (file: string, bytes: number): Buffer | null {
  let fd: number
  try {
    fd = fs.openSync(file, 'r')
  } catch {
    return null
  }
  try {
    const head = Buffer.alloc(bytes)
    const n = fs.readSync(fd, head, 0, bytes, 0)
    return n >= 20 && head.readUInt32BE(0) === 0x7f454c46 ? head.subarray(0, n) : null // "\x7fELF"
  } catch {
    return null
  } finally {
    fs.closeSync(fd)
  }
}

/** The ABI number, or null when the file is no ELF binary with the note (a build from before it, or not ours). */
export function binaryAbi (file: string): number | null {
  const head = elfHead(file, HEAD_BYTES)
  if (!head || head.length < 64) return null
  const at = head.indexOf(NOTE)
  if (at < 0) return null
  const m = /^\d+/.exec(head.toString('latin1', at + NOTE.length, Math.min(head.length, at + NOTE.length + 8)))
  return m ? Number(m[0]) : null
}

// ELF e_machine values of the architectures Node names in process.arch.
const MACHINES: Record<number, string> = { 3: 'ia32', 40: 'arm', 62: 'x64', 183: 'arm64', 243: 'riscv64' }

/**
 * The architecture a binary is built for, as process.arch names it, read
 * from its ELF header (e_machine): a binary of another one (a build/Release
 * made on the host, in a container of another architecture) fails to load
 * with a message that says nothing of it. Null when the file is no ELF
 * binary or its machine is one Node does not name.
 */
export function binaryArch (file: string): string | null {
  const head = elfHead(file, 20)
  if (!head) return null
  // EI_DATA (byte 5): 1 little-endian, 2 big-endian.
  const machine = head[5] === 2 ? head.readUInt16BE(18) : head.readUInt16LE(18)
  return MACHINES[machine] ?? null
}
