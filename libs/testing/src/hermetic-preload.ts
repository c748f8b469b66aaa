// Loaded with `node --import` into every app process a test starts (startAppProcess): the app
// gets the test process's hermetic network, and reports what it refused to the file the test
// process reads after each test (MODPROXY_HERMETIC_REPORT).
import { installHermeticNetwork } from './hermetic-network';

installHermeticNetwork({ reportFile: process.env['MODPROXY_HERMETIC_REPORT'] ?? '' });
