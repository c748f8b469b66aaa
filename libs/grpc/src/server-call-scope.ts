import type { EventEmitter } from 'node:events';
import type { Deadline, Metadata } from '@grpc/grpc-js';

/** The parts of a grpc-js server call that every handler needs, whatever its streaming shape. */
export type ServerCall = EventEmitter & {
  cancelled: boolean;
  readonly metadata: Metadata;
  getDeadline(): Deadline;
};

export interface ServerCallScope {
  /** Fires when the client cancels or the call's deadline passes; handed to storage. */
  readonly signal: AbortSignal;
  /** Stops watching the call; the handler has finished. */
  close(): void;
}

/**
 * The client's clock runs out first: it counts from sending, we from receiving, so its
 * cancellation (RST_STREAM) usually arrives just before our own deadline timer would fire.
 * A cancellation this close to the deadline is taken for the deadline.
 */
const DEADLINE_SLACK_MS = 1_000;

function deadlinePassed(deadline: Deadline): boolean {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) && Date.now() >= at - DEADLINE_SLACK_MS;
}

/**
 * Turns the call's cancellation into an AbortSignal, so storage stops its work the moment
 * nobody is waiting for the answer. grpc-js reports an expired deadline as a cancellation
 * too; the reason tells the two apart (`TimeoutError`), so storage reports `timeout`.
 */
export function openServerCallScope(call: ServerCall): ServerCallScope {
  const controller = new AbortController();
  const onCancelled = () => {
    const reason = deadlinePassed(call.getDeadline())
      ? new DOMException('the call deadline passed', 'TimeoutError')
      : new DOMException('the client cancelled the call', 'AbortError');
    controller.abort(reason);
  };
  if (call.cancelled) onCancelled();
  else call.once('cancelled', onCancelled);
  return {
    signal: controller.signal,
    close: () => call.removeListener('cancelled', onCancelled),
  };
}
