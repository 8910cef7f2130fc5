// The application this library is loaded into: its package, which names
// reports (serviceName) and their Package section.
import fs from 'node:fs'
import path from 'node:path'

/** The package.json nearest above the entry script: the application, not this library. */
export function applicationPackage (): { name: string, version: string } | null {
  const entry = process.argv[1]
  if (!entry) return null
  let dir = path.dirname(path.resolve(entry))
  for (;;) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
      if (pkg && typeof pkg.name === 'string') return { name: pkg.name, version: String(pkg.version ?? '') }
    } catch {}
    const parent = path.dirname(dir)
    if (parent === dir) return null
    dir = parent
  }
}
