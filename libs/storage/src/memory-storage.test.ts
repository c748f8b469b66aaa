import { describeStorageCompliance } from './compliance';
import { MemoryStorage } from './memory-storage';

describeStorageCompliance('memory', async () => {
  const storage = new MemoryStorage();
  return { storage, cleanup: () => storage.close() };
});
