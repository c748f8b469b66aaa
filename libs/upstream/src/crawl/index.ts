export * from './module-tags';
export * from './git-command';
export * from './go-import-meta';
export * from './go-get-discovery';
export * from './vcs-repo-resolver';
export * from './vcs-tag-lister';
export * from './module-version-source';
export * from './upstream-host';
