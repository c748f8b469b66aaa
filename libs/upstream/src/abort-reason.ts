/**
 * Whether a fired signal fired for a deadline (`AbortSignal.timeout`, `withDeadline`, a
 * `CallDeadline`'s timer: their reason is a `TimeoutError`) rather than for a caller that went
 * away. Only the latter is `cancelled`; a deadline is `timeout`, answered 504.
 */
export function abortedByDeadline(signal: AbortSignal): boolean {
  const reason: unknown = signal.reason;
  return (
    typeof reason === 'object' && reason !== null && (reason as { name?: unknown }).name === 'TimeoutError'
  );
}
