// Loaded before the app (`node --import ./dist/apps/crathens/instrument.js dist/apps/crathens/main.js`):
// tracing has to hook the app's imports before they are evaluated.
import { runInstrumentation } from '@modproxy/observability/tracing';

await runInstrumentation('crathens');
