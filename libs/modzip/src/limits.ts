/**
 * Size limits of golang.org/x/mod/zip: the go command refuses to extract a module zip that
 * exceeds them, so a proxy must never store or serve one.
 */
export const MAX_ZIP_FILE = 500 << 20;
/** Largest go.mod inside a module zip (and largest `.mod` the go command reads). */
export const MAX_GO_MOD = 16 << 20;
/** Largest LICENSE inside a module zip. */
export const MAX_LICENSE = 16 << 20;
