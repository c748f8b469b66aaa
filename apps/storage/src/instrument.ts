// Loaded before the app (`node --import ./dist/apps/storage/instrument.js dist/apps/storage/main.js`):
// tracing has to hook the app's imports before they are evaluated.
import { runInstrumentation } from '@modproxy/observability/tracing';

await runInstrumentation('storage');
