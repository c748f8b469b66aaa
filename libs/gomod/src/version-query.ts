/** Longest version query we entertain; real tags, branches and hashes are far shorter. */
const MAX_QUERY_LENGTH = 256;
const QUERY_CHARS = /^[A-Za-z0-9._+\-/~]+$/;

/**
 * Cheap sanity check for the (unescaped) version in a `.info` request that is not a
 * canonical version: a commit hash, branch or tag name, or `latest`-like word. It does not
 * say the query resolves, only that it could name something in a repository, so absurd input
 * can be answered with 400 before any upstream work.
 */
export function isValidVersionQuery(query: string): boolean {
  return (
    query.length > 0 &&
    query.length <= MAX_QUERY_LENGTH &&
    QUERY_CHARS.test(query) &&
    !query.includes('..') &&
    !query.startsWith('-') &&
    // Git refuses these in ref names, so they can name nothing.
    !query.startsWith('/') &&
    !query.endsWith('/') &&
    !query.includes('//')
  );
}
