/** A Redis stream entry id, `<milliseconds>-<sequence>`, as numbers that compare exactly. */
export interface StreamId {
  ms: bigint;
  seq: bigint;
}

/** The id before every entry: a reader at it has seen nothing. */
export const STREAM_START = '0-0';

export function parseStreamId(id: string): StreamId | undefined {
  const match = /^(\d+)-(\d+)$/.exec(id);
  if (!match) return undefined;
  return { ms: BigInt(match[1] ?? '0'), seq: BigInt(match[2] ?? '0') };
}

/** Negative, zero or positive as `a` comes before, is, or comes after `b`; undefined for a malformed id. */
export function compareStreamIds(a: string, b: string): number | undefined {
  const left = parseStreamId(a);
  const right = parseStreamId(b);
  if (!left || !right) return undefined;
  if (left.ms !== right.ms) return left.ms < right.ms ? -1 : 1;
  if (left.seq !== right.seq) return left.seq < right.seq ? -1 : 1;
  return 0;
}
