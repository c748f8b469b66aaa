/**
 * Where stale answers wait for their background refresh. A request for a module that is
 * already waiting (or being refreshed) adds nothing: one module, one revalidation, however
 * many requests and replicas ask.
 */
export interface RevalidationQueue {
  /** Asks for the module's answers to be refreshed soon. Resolves once the request is queued. */
  enqueue(module: string): Promise<void>;
  close(): Promise<void>;
}

/** What a queue consumer runs for each module: refresh its stale answers. */
export type Revalidate = (module: string) => Promise<void>;
