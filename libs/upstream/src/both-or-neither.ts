/**
 * Runs the go.mod and zip downloads side by side: when one fails the other is aborted, and
 * the first failure is the one reported (the other's is only the echo of that abort).
 */
export async function bothOrNeither<A, B>(
  callerSignal: AbortSignal | undefined,
  first: (signal: AbortSignal) => Promise<A>,
  second: (signal: AbortSignal) => Promise<B>,
): Promise<[A, B]> {
  const shared = new AbortController();
  const onCallerAbort = (): void => shared.abort(callerSignal?.reason);
  if (callerSignal?.aborted) shared.abort(callerSignal.reason);
  else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
  let failure: { error: unknown } | undefined;
  const settle = async <T>(run: Promise<T>): Promise<T | undefined> => {
    try {
      return await run;
    } catch (error) {
      failure ??= { error };
      shared.abort();
      return undefined;
    }
  };
  try {
    const [a, b] = await Promise.all([settle(first(shared.signal)), settle(second(shared.signal))]);
    if (failure !== undefined) throw failure.error;
    return [a as A, b as B];
  } finally {
    callerSignal?.removeEventListener('abort', onCallerAbort);
  }
}
