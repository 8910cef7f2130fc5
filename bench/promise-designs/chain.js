async function step (i) { return i }
async function main () {
  const t0 = process.hrtime.bigint()
  const c0 = process.cpuUsage()
  let s = 0
  for (let i = 0; i < 1e6; i++) s += await step(i)
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  const c = process.cpuUsage(c0)
  console.log('FIGURES ' + JSON.stringify({ ms, cpu: (c.user + c.system) / 1000, s }))
}
main()
