// Loaded before the app (`node --import ./dist/apps/lathens/instrument.js dist/apps/lathens/main.js`):
// tracing has to hook the app's imports before they are evaluated.
import { runInstrumentation } from '@modproxy/observability/tracing';

await runInstrumentation('lathens');
