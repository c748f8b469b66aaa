import { credentials, makeGenericClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { runCommand } from '@modproxy/testing';

/**
 * A check a deployment file asks the orchestrator to run against a container: compose's
 * healthcheck command, or a Kubernetes probe (HTTP GET, gRPC health). Ports are the
 * container's; commands are argv as in the container.
 */
export type HealthCheck =
  | { kind: 'http'; port: number; path: string }
  | { kind: 'grpc'; port: number; service: string }
  | { kind: 'command'; argv: string[] };

const CHECK_DEADLINE_MS = 5_000;

/** GET `url`: a status from 200 to 399 passes, as the kubelet's HTTP probe has it. */
export async function httpCheck(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(CHECK_DEADLINE_MS), redirect: 'manual' });
    await response.arrayBuffer();
    return response.status >= 200 && response.status < 400;
  } catch {
    return false;
  }
}

const HealthClient = makeGenericClientConstructor(healthService, 'Health');
const check = healthService['Check'];

/** grpc.health.v1.Health/Check: SERVING passes, as the kubelet's gRPC probe has it. */
export async function grpcCheck(address: string, service: string): Promise<boolean> {
  if (!check) throw new Error('grpc-health-check has no Check method');
  const client = new HealthClient(address, credentials.createInsecure());
  try {
    return await new Promise<boolean>((resolve) => {
      client.makeUnaryRequest(
        '/grpc.health.v1.Health/Check',
        (request: { service: string }) => check.requestSerialize(request),
        (bytes: Buffer) => check.responseDeserialize(bytes) as { status?: string | number },
        { service },
        { deadline: Date.now() + CHECK_DEADLINE_MS },
        (error: ServiceError | null, response?: { status?: string | number }) => {
          resolve(!error && (response?.status === 'SERVING' || response?.status === 1));
        },
      );
    });
  } finally {
    client.close();
  }
}

/** A health check command: exit status 0 passes. */
export async function commandCheck(
  argv: string[],
  env: Record<string, string>,
  cwd: string,
): Promise<boolean> {
  const [file, ...args] = argv;
  if (!file) return false;
  const result = await runCommand(file, args, {
    env,
    cwd,
    signal: AbortSignal.timeout(CHECK_DEADLINE_MS * 2),
  }).catch(() => undefined);
  return result?.exitCode === 0;
}
