// Processes: this process and its descendants, read from /proc, for oslo's
// process tree. Processes come and go while we read: one that vanishes is
// left out, never an error.
import fs from 'node:fs'
import type { ProcessInfo } from '../model'
import { maskArgs } from '../redact'

// Bounds the work when a service forks wildly.
const MAX_PROCESSES = 1000
const MAX_COMMAND_CHARS = 4096

type Ids = ProcessInfo['uids']

let userNames: Map<number, string> | null = null

/** uid → login name from /etc/passwd, read once: users rarely change under a running service. */
function userName (uid: number): string {
  if (userNames === null) {
    userNames = new Map()
    try {
      for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
        const [name, , id] = line.split(':')
        if (name && id !== undefined && !userNames.has(Number(id))) userNames.set(Number(id), name)
      }
    } catch {
      // No passwd file (minimal containers): names read `unknown`.
    }
  }
  return userNames.get(uid) ?? 'unknown'
}

/** `Uid:\t1000\t1000\t1000\t1000` → real, effective, saved. */
function ids (line: string | undefined): Ids {
  const [real, effective, saved] = (line ?? '').split(/\s+/).filter((f) => f !== '').map(Number)
  return { real: real ?? -1, effective: effective ?? -1, saved: saved ?? -1 }
}

function command (pid: number, name: string): string {
  let cmd: string
  try {
    cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  } catch {
    cmd = ''
  }
  // Kernel threads and zombies have no command line: ps shows `[name]`.
  if (cmd === '') return `[${name}]`
  // Masked argument by argument, as argv is: `--password x`, mysql's `-px`.
  const masked = maskArgs(cmd.replace(/\0+$/, '').split('\0')).join(' ')
  return masked.length > MAX_COMMAND_CHARS
    ? `${masked.slice(0, MAX_COMMAND_CHARS)}… (${masked.length - MAX_COMMAND_CHARS} more chars)`
    : masked
}

/** One process without its children, or null when it is gone. */
function readProcess (pid: number): ProcessInfo | null {
  let status: string
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return null
  }
  const fields = new Map<string, string>()
  for (const line of status.split('\n')) {
    const colon = line.indexOf(':')
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim())
  }
  const state = fields.get('State') ?? ''
  const uids = ids(fields.get('Uid'))
  return {
    pid,
    ppid: Number(fields.get('PPid') ?? -1),
    command: command(pid, fields.get('Name') ?? '?'),
    // `S (sleeping)` → `sleeping`
    state: /\((.*)\)/.exec(state)?.[1] ?? state,
    user: userName(uids.real),
    uids,
    gids: ids(fields.get('Gid')),
    children: []
  }
}

/** parent pid → child pids, from every /proc/<pid>/stat: the fallback when the kernel has no `children` files. */
function scanParents (): Map<number, number[]> {
  const byParent = new Map<number, number[]>()
  let entries: string[] = []
  try {
    entries = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))
  } catch {
    return byParent
  }
  for (const entry of entries) {
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8')
      // The command name may hold spaces and parentheses: fields follow the last `)`.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const siblings = byParent.get(ppid) ?? []
      siblings.push(Number(entry))
      byParent.set(ppid, siblings)
    } catch {
      // Exited since readdir.
    }
  }
  return byParent
}

function childPids (pid: number, parents: () => Map<number, number[]>): number[] {
  // Each thread lists the children it forked (CONFIG_PROC_CHILDREN).
  const found = new Set<number>()
  let readable = false
  let tids: string[] = []
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`)
  } catch {
    // Gone, or no access: fall through to the scan.
  }
  for (const tid of tids) {
    try {
      for (const child of fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(/\s+/)) {
        if (child !== '') found.add(Number(child))
      }
      readable = true
    } catch {
      // Thread exited, or the kernel has no such file.
    }
  }
  return readable ? [...found] : (parents().get(pid) ?? [])
}

/** This process and its descendants: one root whose `children` hold the tree. Never throws. */
export function processTree (pid = process.pid): ProcessInfo[] {
  try {
    let parents: Map<number, number[]> | null = null
    const lazyParents = (): Map<number, number[]> => (parents ??= scanParents())
    const seen = new Set<number>()
    const build = (p: number): ProcessInfo | null => {
      if (seen.has(p) || seen.size >= MAX_PROCESSES) return null
      seen.add(p)
      const info = readProcess(p)
      if (info === null) return null
      for (const child of childPids(p, lazyParents).sort((a, b) => a - b)) {
        const node = build(child)
        if (node !== null) info.children.push(node)
      }
      return info
    }
    const root = build(pid)
    return root === null ? [] : [root]
  } catch {
    return []
  }
}
