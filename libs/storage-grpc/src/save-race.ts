/**
 * Saves of one version under way at once in this service, e.g. from proxy replicas that all
 * missed the same version in a cold burst. Only one can be stored; the moment one is, the
 * others are told, so they can answer `already-exists` at once instead of after their backend
 * has written and then removed a second copy (which, on a loaded database, took longer than
 * the clients' deadline: their proxies answered 504 for a version that was stored).
 */
export class SaveRace {
  private readonly running = new Map<string, Set<() => void>>();

  /** Enters a save of `key`; `onLost` runs if another save of `key` is stored first. */
  enter(key: string, onLost: () => void): { won(): void; leave(): void } {
    let entrants = this.running.get(key);
    if (!entrants) {
      entrants = new Set();
      this.running.set(key, entrants);
    }
    const all = entrants;
    all.add(onLost);
    const leave = () => {
      all.delete(onLost);
      if (all.size === 0 && this.running.get(key) === all) this.running.delete(key);
    };
    return {
      won: () => {
        leave();
        for (const lost of [...all]) lost();
      },
      leave,
    };
  }
}
