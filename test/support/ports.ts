/** A TCP port on 127.0.0.1 that was free a moment ago (for a child process to bind): the engine's own helper. */
export { freePort } from '../../src/ops/ports.js';
