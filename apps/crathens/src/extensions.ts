import type { CrathensExtension } from './compose';
import { crawlExtension } from './crawl/crawl-extension';

/**
 * Workers and schedulers beyond the fetch worker (the crawl worker, the catalog and recent
 * crawl schedulers). Each extension is called once at composition, before the fetch worker is
 * built, with everything crathens has (see `CrathensContext`): it may add middleware around
 * fetch attempts (`context.fetchMiddleware`), watch its queues in `/metrics`
 * (`context.jobMetrics.watchQueue`), and returns the parts to start and to stop at shutdown.
 */
export const crathensExtensions: CrathensExtension[] = [crawlExtension];
