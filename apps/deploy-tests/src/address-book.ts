import { getFreePort } from '@modproxy/testing';

/** Where a name of the deployment's network leads: a container's port. */
interface Route {
  owner: string;
  containerPort: number;
}

/**
 * The deployment's network on loopback: every port a container listens on gets a free loopback
 * port, and every name the deployment files use for it (a compose service, a Kubernetes
 * Service and its port, the container itself as 127.0.0.1/localhost) leads there. A name of the
 * deployment with a port nothing listens on is an error that says so, as a connection refused
 * would be in a cluster, only sooner.
 */
export class AddressBook {
  private readonly listening = new Map<string, number>();
  private readonly routes = new Map<string, Route>();
  /** Hosts the deployment defines (services); other hosts are left as they are. */
  private readonly hosts = new Set<string>();

  constructor(private readonly namespace?: string) {}

  /** `owner` listens on `containerPort`: gives it a free loopback port (or `port`, for a server the test runs). */
  async listen(owner: string, containerPort: number, port?: number): Promise<number> {
    const key = `${owner}:${containerPort}`;
    const existing = this.listening.get(key);
    if (existing !== undefined) return existing;
    const local = port ?? (await getFreePort());
    this.listening.set(key, local);
    return local;
  }

  /** `host:port` (a compose service, a Kubernetes Service) leads to `owner`'s `containerPort`. */
  route(host: string, port: number, owner: string, containerPort: number): void {
    this.hosts.add(host);
    this.routes.set(`${host}:${port}`, { owner, containerPort });
  }

  /** The loopback port `host:port` reaches; `self` is the container asking (for 127.0.0.1 and localhost). */
  resolve(host: string, port: number, self?: string): number {
    const route =
      self !== undefined && ['127.0.0.1', 'localhost', '::1', '[::1]', '0.0.0.0'].includes(host)
        ? { owner: self, containerPort: port }
        : this.routes.get(`${this.serviceName(host) ?? host}:${port}`);
    if (!route) {
      const known = [...this.routes.keys()].filter((key) =>
        key.startsWith(`${this.serviceName(host) ?? host}:`),
      );
      throw new Error(
        `${host}:${port} leads nowhere: ${known.length > 0 ? `the deployment has ${known.join(', ')}` : 'no such port'}`,
      );
    }
    const local = this.listening.get(`${route.owner}:${route.containerPort}`);
    if (local === undefined) {
      const ports = [...this.listening.keys()].filter((key) => key.startsWith(`${route.owner}:`));
      throw new Error(
        `${host}:${port} leads to port ${route.containerPort} of ${route.owner}, which listens on ${ports.map((key) => key.split(':')[1]).join(', ') || 'nothing'}`,
      );
    }
    return local;
  }

  /** Whether `host` is a name of the deployment (a service, with or without its namespace). */
  isDeploymentHost(host: string): boolean {
    return this.serviceName(host) !== undefined;
  }

  /**
   * Every `host:port` of the deployment in `text` made `127.0.0.1:<loopback port>`, and nothing
   * else: URLs keep their scheme, userinfo, path and query.
   */
  rewrite(text: string, self?: string): string {
    return text.replace(
      /(\[::1\]|[A-Za-z0-9](?:[-A-Za-z0-9.]*[A-Za-z0-9])?):(\d{1,5})(?![\d])/g,
      (match, host: string, port: string) => {
        const selfHost = self !== undefined && ['127.0.0.1', 'localhost', '[::1]', '0.0.0.0'].includes(host);
        if (!selfHost && !this.isDeploymentHost(host)) return match;
        return `127.0.0.1:${this.resolve(host, Number(port), self)}`;
      },
    );
  }

  /** `storage`, `storage.<namespace>`, `storage.<namespace>.svc[.cluster.local]` → `storage`. */
  private serviceName(host: string): string | undefined {
    if (this.hosts.has(host)) return host;
    const [first, ...rest] = host.split('.');
    if (!first || !this.hosts.has(first) || !this.namespace) return undefined;
    const suffix = rest.join('.');
    return [this.namespace, `${this.namespace}.svc`, `${this.namespace}.svc.cluster.local`].includes(suffix)
      ? first
      : undefined;
  }
}
