/**
 * Tracing set-up, loaded by each app's instrument entry before the app itself (never imported
 * by the app bundle: it would load the SDK a second time).
 */
export * from './start-tracing';
export * from './telemetry-config';
export * from './health-check-sampler';
export * from './instrumentations';
