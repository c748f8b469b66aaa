import { randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, inject } from 'vitest';
import { describeStorageCompliance } from '@modproxy/storage/compliance';
import { MongoStorage } from './mongo-storage';

// Against the real FerretDB the global setup started; every case gets a database of its own.
const uri = inject('ferretDbUri');
let admin: MongoClient;

beforeAll(async () => {
  admin = await MongoClient.connect(uri);
});

afterAll(async () => {
  await admin.close();
});

describeStorageCompliance('mongo', async () => {
  const database = `compliance_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const storage = await MongoStorage.connect({ uri, database });
  return {
    storage,
    async cleanup() {
      await storage.close();
      await admin.db(database).dropDatabase();
    },
  };
});
