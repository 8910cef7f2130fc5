// Durations as people read them in a report: 850 ms, 4.2 s, 5m 03s, 2h 07m.
export function duration (ms: number): string {
  const abs = Math.abs(ms)
  if (abs < 1000) return `${Math.round(abs)} ms`
  if (abs < 60_000) return `${(abs / 1000).toFixed(1)} s`
  const m = Math.floor(abs / 60_000)
  const s = Math.floor((abs % 60_000) / 1000)
  if (m < 60) return `${m}m ${String(s).padStart(2, '0')}s`
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`
}
