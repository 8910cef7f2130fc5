'use strict'
// Bad options and environment variables: a clear error naming them, at setup,
// with nothing installed; in a real process, as a user would meet them.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, spawnNode, tmpDir } = require('./helpers')

async function setupIn (t, options, env = {}) {
  const code = `
    const gmr = require(${JSON.stringify(ROOT)})
    try {
      gmr.setupAutorun('1.0', ${options})
      console.log('SETUP-OK')
    } catch (err) {
      console.log('SETUP-ERROR ' + JSON.stringify({ name: err.name, option: err.option, message: err.message }))
    }
    // Nothing half-installed: the signal keeps its default action.
    console.log('SIGNAL-LISTENERS ' + process.listenerCount('SIGUSR2'))
  `
  const child = spawnNode(t, ['-e', code], { env })
  const { code: exitCode } = await child.exited
  t.equal(exitCode, 0, 'the process itself is fine')
  const m = child.stdoutText.match(/SETUP-ERROR (.*)/)
  return m ? JSON.parse(m[1]) : null
}

const cases = [
  ['unknown signal name', "{ signal: 'SIGNOPE' }", {}, 'option signal', /not a signal name/],
  ['SIGKILL', "{ signal: 'SIGKILL' }", {}, 'option signal', /SIGKILL cannot be used/],
  ['SIGSTOP from the environment', '{}', { GMR_SIGNAL: 'SIGSTOP' }, 'environment variable GMR_SIGNAL', /SIGSTOP cannot be used/],
  ['format', "{ format: 'xml' }", {}, 'option format', /'text' or 'json'/],
  ['format from the environment', '{}', { GMR_FORMAT: 'yaml' }, 'environment variable GMR_FORMAT', /'text' or 'json'/],
  ['empty service name', "{ serviceName: '' }", {}, 'option serviceName', /must not be empty/],
  ['service name with a slash', "{ serviceName: 'a/b' }", {}, 'option serviceName', /path separator/],
  ['non-existent logDir', "{ logDir: '/nonexistent/gmr' }", {}, 'option logDir', /does not exist/],
  ['logDir that is a file', '{ logDir: __filename }', {}, 'option logDir', /not a directory|does not exist/],
  ['empty GMR_LOG_DIR', '{}', { GMR_LOG_DIR: '' }, 'environment variable GMR_LOG_DIR', /must not be empty/],
  ['trigger file that is a directory', "{ fileEventHandler: '/tmp' }", {}, 'option fileEventHandler', /not a regular file/],
  ['trigger file in a missing directory', "{ fileEventHandler: '/nonexistent/dir/trigger' }", {}, 'option fileEventHandler', /does not exist/],
  ['negative interval', '{ fileEventHandlerInterval: -1 }', {}, 'option fileEventHandlerInterval', /from 0.01/],
  ['interval that is not a number', '{}', { GMR_FILE_TRIGGER_INTERVAL: 'soon' }, 'environment variable GMR_FILE_TRIGGER_INTERVAL', /must be a number/],
  ['section timeout of zero', '{ sectionTimeout: 0 }', {}, 'option sectionTimeout', /from 1 to 60000/],
  ['section timeout from the environment', '{}', { GMR_SECTION_TIMEOUT: '1.5' }, 'environment variable GMR_SECTION_TIMEOUT', /integer/],
  ['secretKeys not an array', "{ secretKeys: 'password' }", {}, 'option secretKeys', /array/],
  ['a misspelt option', "{ logdir: '/tmp' }", {}, 'option logdir', /unknown option/],
  ['codeMap not a boolean', "{ codeMap: 'yes' }", {}, 'option codeMap', /true or false/],
  ['GMR_CODE_MAP not a boolean', '{}', { GMR_CODE_MAP: 'maybe' }, 'environment variable GMR_CODE_MAP', /true or false/],
  ['reportOnFatalSignal not a boolean', "{ reportOnFatalSignal: 'on' }", {}, 'option reportOnFatalSignal', /true or false/],
  ['GMR_REPORT_ON_FATAL_SIGNAL not a boolean', '{}', { GMR_REPORT_ON_FATAL_SIGNAL: 'yes' }, 'environment variable GMR_REPORT_ON_FATAL_SIGNAL', /true or false/]
]

for (const [title, options, env, option, message] of cases) {
  t.test(`bad input: ${title}`, async t => {
    const err = await setupIn(t, options, env)
    t.ok(err, 'setup throws')
    t.equal(err.name, 'GuruMeditationOptionError')
    t.equal(err.option, option, 'the error names the option or variable')
    t.match(err.message, message)
    t.match(err.message, option)
  })
}

t.test('a symlinked trigger file is refused', async t => {
  const dir = tmpDir(t)
  fs.writeFileSync(path.join(dir, 'real'), '')
  fs.symlinkSync(path.join(dir, 'real'), path.join(dir, 'link'))
  const err = await setupIn(t, `{ fileEventHandler: ${JSON.stringify(path.join(dir, 'link'))} }`)
  t.equal(err.option, 'option fileEventHandler')
  t.match(err.message, /symbolic link/)
})

t.test('a bad variable with the preload stops the start with one clear line', async t => {
  const child = spawnNode(t, ['-r', 'guru-meditation/register', '-e', 'console.log("app ran")'], { env: { GMR_FORMAT: 'xml' } })
  const { code } = await child.exited
  t.equal(code, 1)
  t.equal(child.stderrText.trim(), "guru-meditation: environment variable GMR_FORMAT: must be 'text' or 'json', got \"xml\"")
  t.notMatch(child.stdoutText, /app ran/)
})

t.test('good options from the environment are taken', async t => {
  const dir = tmpDir(t)
  const err = await setupIn(t, '{}', { GMR_LOG_DIR: dir, GMR_SIGNAL: 'USR1', GMR_FORMAT: 'json', GMR_SECTION_TIMEOUT: '100', GMR_FILE_TRIGGER: path.join(dir, 'trig'), GMR_FILE_TRIGGER_INTERVAL: '0.5' })
  t.equal(err, null)
  t.ok(fs.existsSync(path.join(dir, 'trig')), 'trigger file created')
})
