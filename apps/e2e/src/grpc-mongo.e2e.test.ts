import { inject } from 'vitest';
import { describeGoCommandScenarios } from '@modproxy/testing';
import { startProductionShape } from './deployment';

/** The proxy keeps nothing itself: every version lives in the storage service (gRPC → MongoDB). */
describeGoCommandScenarios('proxy → storage service over gRPC → MongoDB (FerretDB)', (fixtures) =>
  startProductionShape(fixtures, { mongoUri: inject('mongoUri') }),
);
