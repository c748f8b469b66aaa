// Loaded before the app (`node --import ./dist/apps/proxy/instrument.js dist/apps/proxy/main.js`):
// tracing has to hook the app's imports before they are evaluated.
import { runInstrumentation } from '@modproxy/observability/tracing';

await runInstrumentation('proxy');
