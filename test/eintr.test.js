'use strict'
// Signals that land on threads waiting in system calls: the report signal
// sent to every thread of the process (tgkill, as a supervisor or a
// debugger may), and the capture signal each report sends to every thread.
// The application's calls neither fail with EINTR nor come back wrong.
const t = require('tap')
const { spawn } = require('node:child_process')
const path = require('node:path')
const { FIXTURES, spawnNode, waitForOutput, tmpDir, isAlive, checkReports } = require('./helpers')

const SECONDS = 8

// SIGUSR2 to every thread of pid, round after round, for `seconds`; prints
// how many it sent. tgkill reaches a chosen thread, where kill(2) lets the
// kernel pick one.
const SENDER = `
import ctypes, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
pid, seconds = int(sys.argv[1]), float(sys.argv[2])
sent = 0
end = time.time() + seconds
while time.time() < end:
    try:
        tids = [int(t) for t in os.listdir('/proc/%d/task' % pid)]
    except FileNotFoundError:
        break
    for tid in tids:
        if libc.syscall(234, pid, tid, signal.SIGUSR2) == 0:  # SYS_tgkill on x86_64
            sent += 1
    time.sleep(0.03)
print(sent)
`

t.test('system calls interrupted by the report and capture signals do not fail', async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [path.join(FIXTURES, 'eintr.js')], {
    env: { GMR_TEST_DIR: dir, GMR_TEST_SECONDS: String(SECONDS) },
    stdin: 'pipe'
  })
  child.stdin.on('error', () => {})
  const feed = setInterval(() => child.stdin.write('0123456789'), 10)
  t.teardown(() => clearInterval(feed))
  await waitForOutput(child, /^ready/m)

  const sender = spawn('python3', ['-c', SENDER, String(child.pid), String(SECONDS - 1)], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (sender.exitCode === null) sender.kill('SIGKILL') })
  let sentText = ''
  sender.stdout.on('data', d => { sentText += d })
  await new Promise(resolve => sender.on('exit', resolve))
  const sent = Number(sentText)

  const [, json] = await waitForOutput(child, /^counts (.*)$/m, 'stdoutText', 20000)
  const counts = JSON.parse(json)
  const errors = child.stdoutText.split('\n').filter(l => l.startsWith('ERROR'))
  const reports = checkReports(dir).length
  t.comment(`signals sent ${sent} (to every thread), reports written ${reports}; operations ${JSON.stringify(counts)}; errors ${errors.length}`)
  t.ok(sent > 500, `signals sent (${sent})`)
  t.ok(reports >= 10, `reports written meanwhile (${reports})`)
  t.same(errors, [], 'no operation failed or came back wrong')
  for (const op of ['read', 'write', 'pool-read', 'fs', 'net', 'execSync', 'spawnSync', 'execFile', 'atomics-timeout', 'sleep-child', 'atomics-wait', 'stdin']) {
    t.ok(counts[op] > 5, `${op} ran (${counts[op]} times)`)
  }
  t.notMatch(child.stderrText, /guru-meditation|EINTR/, 'nothing on stderr')
  t.ok(isAlive(child.pid), 'the process is alive')
})
