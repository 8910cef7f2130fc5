// JSON view. The model is plain data by construction (user sections' content
// is made plain when it is taken, src/sections/user.ts), so it is serialized
// as it is: walking it again would cost a busy thread tens of milliseconds.
import type { Report } from '../model'
import { safeJsonStringify } from '../util/json-safe'

export function renderJson (report: Report): string {
  try {
    return JSON.stringify(report, null, 2)
  } catch {
    return safeJsonStringify(report) // a model that is not plain after all: still a report
  }
}
