import { describe, expect, it } from 'vitest';
import { createLogger } from '@modproxy/observability';
import { patternStream, streamDigest } from '@modproxy/storage/compliance';
import { GrpcStorage } from '@modproxy/storage-grpc';
import { loadStorageConfig } from './config';
import { startStorageService } from './service';

const silent = createLogger({ service: 'storage-test', level: 'silent' });
const module = 'example.test/metered';

/** The value of one series in a Prometheus text exposition, or undefined when it is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('storage service metrics', () => {
  it('shows gRPC calls by method and code, operations by result and zip bytes served and saved', async () => {
    const config = loadStorageConfig({
      env: { GRPC_PORT: '0', HTTP_PORT: '0', LOG_LEVEL: 'silent', STORAGE_BACKEND: 'memory' },
    });
    const service = await startStorageService(config, silent);
    const client = new GrpcStorage({ url: `127.0.0.1:${service.grpcPort}` });
    try {
      const size = 2 * 1024 * 1024 + 5;
      await client.save({
        module,
        version: 'v1.0.0',
        info: Buffer.from('{"Version":"v1.0.0"}'),
        mod: Buffer.from(`module ${module}\n`),
        zip: patternStream(size, 3),
      });
      await expect(client.mod(module, 'v2.0.0')).rejects.toMatchObject({ kind: 'not-found' });
      for (let i = 0; i < 2; i++) await streamDigest((await client.zip(module, 'v1.0.0')).stream);
      const text = await (await fetch(`http://127.0.0.1:${service.httpPort}/metrics`)).text();
      expect(sample(text, 'modproxy_storage_grpc_server_handled_total{method="Save",code="OK"}')).toBe(1);
      expect(sample(text, 'modproxy_storage_grpc_server_handled_total{method="GetZip",code="OK"}')).toBe(2);
      expect(
        sample(text, 'modproxy_storage_grpc_server_handled_total{method="GetMod",code="NOT_FOUND"}'),
      ).toBe(1);
      expect(
        sample(text, 'modproxy_storage_grpc_server_handling_seconds_count{method="GetZip",code="OK"}'),
      ).toBe(2);
      expect(sample(text, 'modproxy_storage_operations_total{op="GetMod",result="not-found"}')).toBe(1);
      expect(sample(text, 'modproxy_storage_zip_bytes_total{direction="saved"}')).toBe(size);
      expect(sample(text, 'modproxy_storage_zip_bytes_total{direction="served"}')).toBe(2 * size);
      expect(sample(text, 'modproxy_storage_ready')).toBe(1);
    } finally {
      await client.close();
      await service.shutdown();
    }
  });
});
