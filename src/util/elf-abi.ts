// The Node ABI a guru-meditation binary was built for, read from its file
// without loading it: native/addon.cc puts "node-abi=<NODE_MODULE_VERSION>"
// in an ELF section of its own (.gmr_node_abi). Loading a binary of another
// ABI can end the process, so the loader asks first.
import fs from 'node:fs'

const SECTION = '.gmr_node_abi'

function readAt (fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length)
  const n = fs.readSync(fd, buf, 0, length, offset)
  if (n !== length) throw new Error('truncated ELF file')
  return buf
}

/** The ABI number, or null when the file is no ELF64 binary with the section (a build from before it, or not ours). */
export function binaryAbi (file: string): number | null {
  let fd: number
  try {
    fd = fs.openSync(file, 'r')
  } catch {
    return null
  }
  try {
    const header = readAt(fd, 0, 64)
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) return null  // ELF, 64-bit, little-endian
    const shoff = Number(header.readBigUInt64LE(0x28))
    const shentsize = header.readUInt16LE(0x3a)
    const shnum = header.readUInt16LE(0x3c)
    const shstrndx = header.readUInt16LE(0x3e)
    if (shentsize < 64 || shnum === 0 || shstrndx >= shnum) return null
    const sections = readAt(fd, shoff, shnum * shentsize)
    const section = (i: number): { name: number, offset: number, size: number } => ({
      name: sections.readUInt32LE(i * shentsize),
      offset: Number(sections.readBigUInt64LE(i * shentsize + 0x18)),
      size: Number(sections.readBigUInt64LE(i * shentsize + 0x20))
    })
    const strtab = section(shstrndx)
    const names = readAt(fd, strtab.offset, strtab.size)
    for (let i = 0; i < shnum; i++) {
      const s = section(i)
      const end = names.indexOf(0, s.name)
      if (names.toString('latin1', s.name, end < 0 ? undefined : end) !== SECTION) continue
      const m = /^node-abi=(\d+)/.exec(readAt(fd, s.offset, Math.min(s.size, 64)).toString('latin1'))
      return m ? Number(m[1]) : null
    }
    return null
  } catch {
    return null
  } finally {
    fs.closeSync(fd)
  }
}
