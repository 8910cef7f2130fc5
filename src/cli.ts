#!/usr/bin/env node
// gmr <pid>: prints the Guru Meditation Report of another process of this
// user that loaded guru-meditation, even one whose event loop is stuck, as
// jstack does for a JVM. It leaves a request in a private directory, sends
// the report signal, and waits for the report the target writes back (see
// native/watchdog/attach.h for the target's side).
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { foldSamples } from './analysis/samples'
import { renderJson } from './format/json'
import { renderText } from './format/text'
import type { Report } from './model'
import { openNew } from './util/new-file'

const USAGE = `usage: gmr <pid> [--json] [--out FILE] [--timeout SECONDS] [--signal NAME]
                 [--samples N [--interval MS]]
       gmr --list

Prints the Guru Meditation Report of process <pid>, which must run as this
user and have loaded guru-meditation.

  --json             the JSON view instead of the text view
  --out FILE         write the report to FILE (new, mode 0600) instead of standard output
  --timeout SECONDS  how long to wait for the report (default 10)
  --signal NAME      the process's report signal (default: the one it announces;
                     SIGUSR2 for a process that announces none)
  --samples N        take N reports (2 to 100) and fold them per thread: where
                     each thread sat in how many, and which never moved; the
                     rest of the report is the last one's
  --interval MS      the pause between two samples (10 to 60000; default 1000)
  --list             list this user's processes that loaded guru-meditation`

class CliError extends Error {
  constructor (message: string, readonly code = 1) { super(message) }
}

interface Request {
  pid: number
  json: boolean
  out: string | null
  timeoutMs: number
  /** null: the one the process announces. */
  signal: NodeJS.Signals | null
  /** Reports to take and fold (1: one report, as it comes). */
  samples: number
  intervalMs: number
}

function parseArgs (argv: string[]): Request | 'list' | 'help' {
  let pid: number | null = null
  const request: Omit<Request, 'pid'> = { json: false, out: null, timeoutMs: 10000, signal: null, samples: 1, intervalMs: 1000 }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined || v === '') throw new CliError(`gmr: ${arg} needs a value\n${USAGE}`, 2)
      return v
    }
    if (arg === '--help' || arg === '-h') return 'help'
    else if (arg === '--list') return 'list'
    else if (arg === '--json') request.json = true
    else if (arg === '--out') request.out = path.resolve(value())
    else if (arg === '--timeout') {
      const seconds = Number(value())
      if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) throw new CliError('gmr: --timeout takes a number of seconds, more than 0 and at most 3600', 2)
      request.timeoutMs = seconds * 1000
    } else if (arg === '--signal') {
      const name = value().toUpperCase()
      const signal = (name.startsWith('SIG') ? name : `SIG${name}`) as NodeJS.Signals
      if (!(signal in os.constants.signals) || signal === 'SIGKILL' || signal === 'SIGSTOP') throw new CliError(`gmr: --signal: '${name}' is not a signal a report can be asked with`, 2)
      request.signal = signal
    } else if (arg === '--samples') {
      const n = Number(value())
      if (!Number.isInteger(n) || n < 2 || n > 100) throw new CliError('gmr: --samples takes a whole number from 2 to 100', 2)
      request.samples = n
    } else if (arg === '--interval') {
      const ms = Number(value())
      if (!Number.isInteger(ms) || ms < 10 || ms > 60000) throw new CliError('gmr: --interval takes a whole number of milliseconds from 10 to 60000', 2)
      request.intervalMs = ms
    } else if (/^[1-9]\d*$/.test(arg) && pid === null) pid = Number(arg)
    else throw new CliError(`gmr: unexpected argument '${arg}'\n${USAGE}`, 2)
  }
  if (pid === null) throw new CliError(USAGE, 2)
  return { pid, ...request }
}

const read = (file: string): string | null => {
  try { return fs.readFileSync(file, 'utf8') } catch { return null }
}

/**
 * The library's binary (a local build or a prebuild) among the process's
 * mappings: its file name, not any path that holds the words (a Node
 * unpacked under a directory named after the library is not the library).
 */
const LIBRARY_MAPPED = /\/(?:guru_meditation|guru-meditation\.abi\d+)\.node(?: \(deleted\))?$/m

function commandOf (pid: number): string {
  return (read(`/proc/${pid}/cmdline`) ?? '').split('\0').filter(Boolean).join(' ') || (read(`/proc/${pid}/comm`) ?? '').trim()
}

const signalName = (n: number): NodeJS.Signals | undefined =>
  (Object.keys(os.constants.signals) as NodeJS.Signals[]).find(k => os.constants.signals[k] === n)

/**
 * The report signal the process's watchdog announces in its thread name
 * (`gmr-watchdog:12`, native/watchdog/watchdog.cc): a number, 0 when it
 * reports on no signal, null when no watchdog thread is found (not set up,
 * or a version that announces none).
 */
function announcedSignal (pid: number): number | null {
  let tasks: string[] = []
  try { tasks = fs.readdirSync(`/proc/${pid}/task`) } catch { return null }
  for (const tid of tasks) {
    const m = /^gmr-watchdog(?::(\d+))?$/.exec((read(`/proc/${pid}/task/${tid}/comm`) ?? '').trim())
    if (m) return m[1] ? Number(m[1]) : 0
  }
  return null
}

/**
 * The signal to send: the one the process announces, which --signal, when
 * given, must name. Otherwise --signal or SIGUSR2, and only if the process
 * catches it (a signal it does not catch would end it). Never a signal Node
 * itself takes: SIGINT and SIGTERM end it, SIGUSR1 opens its inspector.
 */
function signalFor (pid: number, given: NodeJS.Signals | null): { signal: NodeJS.Signals } | { refused: string } {
  const announced = announcedSignal(pid)
  if (announced === 0) return { refused: `gmr: process ${pid} was set up without a report signal (option signal: false)` }
  if (announced !== null) {
    const name = signalName(announced)
    if (!name) return { refused: `gmr: process ${pid} announces report signal ${announced}, which this system does not know` }
    if (given && os.constants.signals[given] !== announced) return { refused: `gmr: process ${pid} reports on ${name}, not ${given}` }
    return { signal: name }
  }
  const signal = given ?? 'SIGUSR2'
  if (['SIGINT', 'SIGTERM', 'SIGUSR1'].includes(signal)) {
    return { refused: `gmr: process ${pid} announces no report signal, and ${signal} is one Node takes itself (${signal === 'SIGUSR1' ? 'it opens the inspector' : 'it ends the process'}): not sent` }
  }
  const caught = /^SigCgt:\s*([0-9a-f]+)$/m.exec(read(`/proc/${pid}/status`) ?? '')
  const bit = BigInt(os.constants.signals[signal] - 1)
  if (!caught || ((BigInt(`0x${caught[1]}`) >> bit) & 1n) === 0n) {
    return { refused: `gmr: process ${pid} does not catch ${signal}: its report signal is another one (see --signal), or it was set up without one` }
  }
  return { signal }
}

/** Why gmr cannot ask `pid` for a report, before any signal is sent; null when it can. */
function refusal (pid: number): string | null {
  let st: fs.Stats
  try {
    st = fs.statSync(`/proc/${pid}`)
  } catch {
    return `gmr: there is no process ${pid}`
  }
  const uid = process.geteuid?.() ?? 0
  if (st.uid !== uid) return `gmr: process ${pid} belongs to another user (uid ${st.uid}); run gmr as that user`
  const maps = read(`/proc/${pid}/maps`)
  if (maps === null) return `gmr: cannot read /proc/${pid}/maps`
  if (!LIBRARY_MAPPED.test(maps)) {
    const comm = (read(`/proc/${pid}/comm`) ?? '').trim()
    let exe = ''
    try { exe = fs.readlinkSync(`/proc/${pid}/exe`) } catch {}
    const isNode = /(^|\/)node$/.test(exe) || comm === 'node' || comm === 'MainThread'
    return isNode
      ? `gmr: process ${pid} is a Node.js process that has not loaded guru-meditation (start it with node -r guru-meditation/register)`
      : `gmr: process ${pid} (${comm || '?'}) is not a Node.js process with guru-meditation loaded`
  }
  return null
}

/** The directory requests and reports pass through, private to this user (as the target checks). */
function attachDirectory (): string {
  const uid = process.geteuid?.() ?? 0
  const dir = `/tmp/guru-meditation-${uid}`
  try { fs.mkdirSync(dir, { mode: 0o700 }) } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new CliError(`gmr: cannot create ${dir}: ${(err as Error).message}`)
  }
  const st = fs.lstatSync(dir)
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new CliError(`gmr: ${dir} is not a directory private to this user; remove it and try again`)
  }
  return dir
}

/** Whether a gmr (by its pid) still runs. */
const gmrAlive = (pid: number): boolean => {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

/** Whether a request another gmr left has no gmr waiting for it any more: its gmr is gone, or its time is up. */
function staleRequest (file: string): boolean {
  let st: fs.Stats
  let body: string
  try {
    st = fs.lstatSync(file)
    body = fs.readFileSync(file, 'utf8')
  } catch { return true }
  const owner = /^out=\d+\.(\d+)\./m.exec(body)
  const timeout = /^timeout=(\d+)$/m.exec(body)
  const alive = owner !== null && gmrAlive(Number(owner[1]))
  return !alive || Date.now() - st.mtimeMs > (timeout ? Number(timeout[1]) + 1 : 3601) * 1000
}

/** Leaves the request, exclusively: one gmr at a time per target. A stale one (its gmr died) is replaced. */
function leaveRequest (file: string, body: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, body, { flag: 'wx', mode: 0o600 })
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new CliError(`gmr: cannot write ${file}: ${(err as Error).message}`)
      if (!staleRequest(file)) throw new CliError(`gmr: another gmr is asking the same process for a report (${file})`)
      fs.unlinkSync(file)
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** Reports a target wrote after their gmr gave up (`<pid>.<gmr pid>.<nonce>.report`): nobody will read them. */
function removeOrphanReports (dir: string): void {
  let names: string[] = []
  try { names = fs.readdirSync(dir) } catch {}
  for (const name of names) {
    const m = /^\d+\.(\d+)\.[0-9a-f]+\.report$/.exec(name)
    if (m && !gmrAlive(Number(m[1]))) try { fs.unlinkSync(path.join(dir, name)) } catch {}
  }
}

async function askForReport (r: Request): Promise<string> {
  const refused = refusal(r.pid)
  if (refused) throw new CliError(refused)
  const chosen = signalFor(r.pid, r.signal)
  if ('refused' in chosen) throw new CliError(chosen.refused)
  const { signal } = chosen
  const dir = attachDirectory()
  removeOrphanReports(dir)
  const name = `${r.pid}.${process.pid}.${randomBytes(6).toString('hex')}.report`
  const reportFile = path.join(dir, name)
  const requestFile = path.join(dir, `${r.pid}.request`)
  // The timeout lets the target tell a request whose gmr died (see native/watchdog/attach.h).
  leaveRequest(requestFile, `out=${name}\nformat=${r.json ? 'json' : 'text'}\ntimeout=${Math.ceil(r.timeoutMs / 1000)}\n`)
  const cleanUp = (): void => { try { fs.unlinkSync(requestFile) } catch {} }
  const interrupted = (): void => { cleanUp(); process.exit(130) }
  process.once('SIGINT', interrupted)
  try {
    process.kill(r.pid, signal)
    for (const end = Date.now() + r.timeoutMs; Date.now() < end; await sleep(20)) {
      // Linked into place complete: once it is there, it is whole.
      const text = read(reportFile)
      if (text !== null) {
        fs.unlinkSync(reportFile)
        return text
      }
    }
  } finally {
    process.off('SIGINT', interrupted)
    cleanUp()
  }
  throw new CliError(`gmr: no report from process ${r.pid} within ${r.timeoutMs / 1000} s (it was sent ${signal})`)
}

// Several reports, `intervalMs` apart, folded per thread into the last
// one's Samples and rendered here: the process writes each as JSON (all of
// it masked there, as any report).
async function sampledReport (r: Request): Promise<string> {
  const reports: Report[] = []
  for (let i = 0; i < r.samples; i++) {
    if (i > 0) await sleep(r.intervalMs)
    reports.push(JSON.parse(await askForReport({ ...r, json: true })) as Report)
  }
  const last = reports[reports.length - 1]
  last.samples = foldSamples(reports.map(report => ({ atMs: Date.parse(report.package.generatedAt), threads: report.threads })), r.intervalMs)
  return r.json ? `${renderJson(last)}\n` : renderText(last)
}

function list (): string {
  const uid = process.geteuid?.() ?? 0
  const rows: string[] = []
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      if (fs.statSync(`/proc/${entry}`).uid !== uid) continue
    } catch { continue }
    const maps = read(`/proc/${entry}/maps`)
    if (maps && LIBRARY_MAPPED.test(maps)) rows.push(`${entry.padStart(7)}  ${commandOf(Number(entry)).slice(0, 200)}`)
  }
  return rows.length ? `    PID  COMMAND\n${rows.join('\n')}\n` : ''
}

function refuseExisting (file: string): void {
  let st: fs.Stats | null = null
  try { st = fs.lstatSync(file) } catch {}
  if (st) throw new CliError(`gmr: ${file} already exists${st.isSymbolicLink() ? ' (a symbolic link)' : ''}; --out writes a new file only`)
}

function writeNewFile (file: string, text: string): void {
  let fd: number
  try {
    fd = openNew(file)
  } catch (err) {
    throw new CliError(`gmr: cannot create ${file}: ${(err as Error).message}`)
  }
  try {
    fs.writeFileSync(fd, text)
  } finally {
    fs.closeSync(fd)
  }
}

async function main (): Promise<void> {
  const parsed = parseArgs(process.argv.slice(2))
  if (parsed === 'help') return void process.stdout.write(`${USAGE}\n`)
  if (parsed === 'list') return void process.stdout.write(list())
  // --out makes a new file, mode 0600, never through a symlink: checked
  // before the process is asked, and again (O_EXCL) when written.
  if (parsed.out) refuseExisting(parsed.out)
  const text = parsed.samples > 1 ? await sampledReport(parsed) : await askForReport(parsed)
  if (parsed.out) writeNewFile(parsed.out, text)
  else process.stdout.write(text)
}

main().catch(err => {
  process.stderr.write(`${err instanceof CliError ? err.message : (err as Error).stack ?? String(err)}\n`)
  process.exitCode = err instanceof CliError ? err.code : 1
})
