import { join } from 'node:path';

export const REPO_ROOT = join(__dirname, '..', '..', '..');

/** The four apps; each is an image target, a compose service and a Deployment of that name. */
export const APPS = ['proxy', 'storage', 'lathens', 'crathens'] as const;
export type AppName = (typeof APPS)[number];

export const DOCKERFILE = join(REPO_ROOT, 'Dockerfile');
export const DOCKERIGNORE = join(REPO_ROOT, '.dockerignore');
export const COMPOSE_FILE = join(REPO_ROOT, 'docker-compose.yml');
export const K8S_DIR = join(REPO_ROOT, 'k8s');
export const KUSTOMIZATIONS = {
  base: join(K8S_DIR, 'base'),
  dev: join(K8S_DIR, 'overlays', 'dev'),
  prod: join(K8S_DIR, 'overlays', 'prod'),
} as const;
export type KustomizationName = keyof typeof KUSTOMIZATIONS;
