'use strict'
// Loaded Objects: every shared object mapped into the process with its load
// bias and GNU build ID, checked against what readelf and /proc say of the
// same process; the text view lists the objects its native frames are in.
const t = require('tap')
const fs = require('node:fs')
const { execFileSync } = require('node:child_process')
const { APP, spawnNode, waitForOutput, signalForReport, tmpDir } = require('./helpers')
const { parseText } = require('./helpers/validate')

/** The GNU build ID readelf prints for a file, or null (no readelf, or none). */
function readelfBuildId (file) {
  try {
    const out = execFileSync('readelf', ['-n', file], { encoding: 'utf8' })
    return /Build ID: ([0-9a-f]+)/.exec(out)?.[1] ?? null
  } catch { return null }
}

t.test('the loaded objects: node and libc with their build IDs and bases; the text lists those in stacks', async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [APP, 'programmatic', 'idle'], { env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }) } })
  await waitForOutput(child, /ready/)
  const report = await signalForReport(child, dir)
  const objects = report.loadedObjects
  const maps = fs.readFileSync(`/proc/${child.pid}/maps`, 'utf8').split('\n').filter(Boolean).map(l => {
    const [range, , offset, , , ...path] = l.trim().split(/\s+/)
    return { start: BigInt(`0x${range.split('-')[0]}`), offset: BigInt(`0x${offset}`), path: path.join(' ') }
  })
  const exe = fs.realpathSync(`/proc/${child.pid}/exe`)
  const node = objects.find(o => o.path === exe)
  t.ok(node, `the executable is listed (${exe})`)
  const expectedNodeId = readelfBuildId(exe)
  if (expectedNodeId) t.equal(node.buildId, expectedNodeId, "the executable's build ID, as readelf reads it from the file")
  t.equal(node.inStacks, true, 'its frames are in the stacks')
  const libc = objects.find(o => /\/libc\.so\.6$/.test(o.path))
  t.ok(libc, 'libc is listed')
  const libcId = readelfBuildId(libc.path)
  if (libcId) t.equal(libc.buildId, libcId, "libc's build ID")
  // A shared library's load bias is where its file's offset 0 is mapped.
  // The loader's name (/lib/...) and the kernel's (the resolved path, /usr/lib/... where /lib is a link).
  const libcFile = fs.realpathSync(libc.path)
  const first = maps.filter(m => m.path === libcFile).sort((a, b) => (a.start < b.start ? -1 : 1))[0]
  t.equal(BigInt(libc.base), first.start - first.offset, "libc's base is where its file begins in /proc/PID/maps")
  t.equal(BigInt(libc.mapped), first.start, 'and its lowest mapping')
  t.ok(objects.some(o => o.path.includes('guru_meditation') || o.path.includes('guru-meditation')), 'the addon itself')
  const mapped = objects.map(o => BigInt(o.mapped))
  t.same(mapped, [...mapped].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), 'lowest mapped first')

})

t.test('the text view: the objects in stacks, then a count of the rest', async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [APP, 'programmatic', 'idle'], { env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'text' }) } })
  await waitForOutput(child, /ready/)
  const text = await signalForReport(child, dir)
  const body = parseText(text).sections.find(s => s.title === 'Loaded Objects').body
  const lines = body.split('\n').filter(Boolean)
  t.ok(lines.some(l => / {2}base 0x[0-9a-f]{16} {2}build-id [0-9a-f]+$/.test(l) && l.startsWith(fs.realpathSync(`/proc/${child.pid}/exe`))), 'the executable with its base and build ID')
  t.match(lines.at(-1), /^… and \d+ more loaded objects? no frame is in \(the JSON view lists them all\)$/)
})
