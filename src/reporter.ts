// The reporter thread: formats and writes triggered reports. It has its own
// event loop, so a report is written even while the application's threads
// are stuck; it asks the main thread for what only that thread has (the live
// configuration, user sections) and does not wait past a deadline.
import { workerData, type MessagePort } from 'node:worker_threads'
import type { Configuration } from './model'
import { loadAddon, type RawCapture } from './native'
import type { ResolvedOptions } from './options'
import { writeReportText } from './output'
import { buildReport, render, type LiveParts } from './report'
import type { StaticPackage } from './sections/package'
import { unavailableSections } from './sections/user'

export interface ReporterData {
  options: Omit<ResolvedOptions, 'conf' | 'secretKeys'>
  pkg: StaticPackage
  /** The configuration as of setup, for when the main thread cannot answer. */
  confSnapshot: Configuration
  sectionNames: string[]
}

export type ReporterMessage = { type: 'collect', id: number } | { type: 'hello', tid: number }
export type MainMessage =
  | { type: 'ack', id: number }
  | { type: 'collected', id: number, live: LiveParts }
  | { type: 'sections', names: string[] }
  | { type: 'options', data: ReporterData }

/** How long the main thread has to pick up a request: a stuck one never does. */
const ACK_TIMEOUT_MS = 500
/** Extra time for the main thread's answer beyond the sections' own deadline. */
const ANSWER_MARGIN_MS = 250

function main (): void {
  let data = workerData as ReporterData & { port: MessagePort }
  const port = data.port
  const addon = loadAddon()
  const tid = addon.info().tid
  const hello: ReporterMessage = { type: 'hello', tid }
  port.postMessage(hello)
  let nextId = 1
  const waiting = new Map<number, { ack: () => void, answer: (live: LiveParts) => void }>()

  port.on('message', (message: MainMessage) => {
    if (message.type === 'ack') waiting.get(message.id)?.ack()
    else if (message.type === 'collected') waiting.get(message.id)?.answer(message.live)
    else if (message.type === 'sections') data = { ...data, sectionNames: message.names }
    else if (message.type === 'options') data = { ...message.data, port }
  })

  // The main thread acknowledges at once and answers within the sections'
  // deadline; when it does neither in time, the report goes without it.
  function askMain (): Promise<LiveParts> {
    const id = nextId++
    return new Promise(resolve => {
      const giveUp = (timeoutMs: number) => setTimeout(() => {
        waiting.delete(id)
        const reason = `the main thread did not answer within ${timeoutMs} ms (its event loop is busy or blocked)`
        resolve({
          configuration: data.confSnapshot,
          sections: unavailableSections(data.sectionNames, reason),
          errors: [`configuration: as of setup; ${reason}`]
        })
      }, timeoutMs)
      let timer = giveUp(ACK_TIMEOUT_MS)
      waiting.set(id, {
        ack: () => {
          clearTimeout(timer)
          timer = giveUp(data.options.sectionTimeout + ANSWER_MARGIN_MS)
        },
        answer: live => {
          clearTimeout(timer)
          waiting.delete(id)
          resolve(live)
        }
      })
      const request: ReporterMessage = { type: 'collect', id }
      port.postMessage(request)
    })
  }

  async function report (capture: RawCapture): Promise<void> {
    const live = await askMain()
    const built = buildReport(capture, data.pkg, live, tid)
    writeReportText(render(built, data.options.format), data.options, new Date(capture.startedUnixMs))
  }

  addon.attachReporter((err, capture) => {
    if (err || !capture) {
      addon.reportDone()
      return
    }
    report(capture).catch(e => {
      writeReportText(`guru-meditation: the report failed: ${(e as Error).stack ?? e}\n`, { logDir: null, serviceName: '' }, new Date())
    }).finally(() => addon.reportDone())
  })
}

main()
