export {
  describeStorageCompliance,
  type StorageComplianceOptions,
  type StorageUnderTest,
} from './describe-storage-compliance';
export * from './test-streams';
