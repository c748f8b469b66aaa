// One implementation for every lib: configuration errors, logs and upstream names hide URL
// userinfo the same way.
export { redactedBase, redactText } from '@modproxy/config';
