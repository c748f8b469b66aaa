/**
 * The id of the FetchVersion job for module@version: the same on every producer, so that every
 * replica's add of one version is one job (BullMQ ignores an add whose id exists).
 *
 * BullMQ refuses custom ids that are integers or contain `:` (its key separator). A valid module
 * path has only letters, digits and `-._~/`, and a canonical version only letters, digits and
 * `-.+`, so `module@version` never contains `:` and, with its `@`, is never an integer: it
 * needs no escaping and stays readable in Redis and dashboards. Callers pass validated inputs
 * (see `jobContracts`); case is kept, as module paths are case-sensitive.
 */
export function fetchJobId(module: string, version: string): string {
  return `${module}@${version}`;
}

/** The id that deduplicates CrawlModule jobs of one module while one waits. */
export function crawlJobId(module: string): string {
  return `crawl@${module}`;
}

/** The id that deduplicates RefreshList jobs of one module while one waits. */
export function refreshJobId(module: string): string {
  return `refresh@${module}`;
}
