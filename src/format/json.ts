// JSON view. The model is already JSON-shaped; what needs care is the
// content of user sections, which can be anything a generator returned.
import type { Report } from '../model'
import { safeJsonStringify } from '../util/json-safe'

export function renderJson (report: Report): string {
  return safeJsonStringify(report)
}
