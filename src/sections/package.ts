// Package: what is running, which versions, and why this report was made.
import fs from 'node:fs'
import os from 'node:os'
import type { PackageInfo } from '../model'
import { applicationPackage } from '../util/application'
import { maskArgs } from '../redact'

/** oslo's version object, `{ name, version }`, or a plain version string. */
export type VersionInfo =
  | string
  | { product?: string | (() => string), vendor?: string | (() => string), version?: string | (() => string), name?: string }
  | undefined

/**
 * The parts of Package known at setup: the reporter thread gets a copy.
 * argv and execArgv as given: they are masked when a report is built (by the
 * rules of that moment), not at set-up, which the masking patterns' first
 * compile would slow by milliseconds.
 */
export interface StaticPackage {
  serviceName: string
  product: string
  vendor: string
  version: string
  application: { name: string, version: string } | null
  argv: string[]
  execArgv: string[]
  startedAtMs: number
}

function text (value: unknown): string {
  try {
    const v = typeof value === 'function' ? value() : value
    return v === undefined || v === null ? '' : String(v)
  } catch (err) {
    return `[threw: ${(err as Error).message}]`
  }
}

/**
 * The working directory. One deleted since (a deploy removed the release
 * directory the service started in) makes process.cwd() throw: /proc still
 * names it, `/srv/app/releases/41 (deleted)`.
 */
function workingDirectory (): string {
  try { return process.cwd() } catch {}
  try { return fs.readlinkSync('/proc/self/cwd') } catch (err) { return `(unknown: ${(err as Error).message})` }
}

export function staticPackage (version: VersionInfo, serviceName: string): StaticPackage {
  const application = applicationPackage()
  let product = ''
  let vendor = ''
  let ver = ''
  if (typeof version === 'string') {
    ver = version
  } else if (version && typeof version === 'object') {
    const v = version as Record<string, unknown>
    product = text(v.product ?? v.name)
    vendor = text(v.vendor)
    ver = text(v.version)
  }
  return {
    serviceName,
    product: product || application?.name || serviceName,
    vendor,
    version: ver || application?.version || '',
    application,
    argv: [...process.argv],
    execArgv: [...process.execArgv],
    startedAtMs: Date.now() - process.uptime() * 1000
  }
}

export function buildPackage (s: StaticPackage, trigger: PackageInfo['trigger'], writtenBy: string, at: Date): PackageInfo {
  return {
    serviceName: s.serviceName,
    product: s.product,
    vendor: s.vendor,
    version: s.version,
    application: s.application,
    node: process.version,
    v8: process.versions.v8,
    uv: process.versions.uv ?? '',
    platform: process.platform,
    arch: process.arch,
    pid: process.pid,
    ppid: process.ppid,
    hostname: os.hostname(),
    cwd: workingDirectory(),
    argv: maskArgs(s.argv),
    execArgv: maskArgs(s.execArgv),
    uptimeSeconds: Math.round((at.getTime() - s.startedAtMs) / 100) / 10,
    generatedAt: at.toISOString(),
    // Only what the schema documents: a gmr request's file and format are
    // where the report goes, not part of it.
    trigger: { kind: trigger.kind, detail: trigger.detail, coalesced: trigger.coalesced },
    writtenBy
  }
}
