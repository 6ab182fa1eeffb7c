import { describe, expect, it } from 'vitest';
import { describeExit } from '../../src/core/process-exit.js';

describe('describeExit', () => {
  it('a fault signal is a crash, any other signal a kill, a code an exit', () => {
    expect(describeExit(null, 'SIGSEGV')).toEqual({ cause: 'crashed', signal: 'SIGSEGV' });
    expect(describeExit(null, 'SIGABRT')).toEqual({ cause: 'crashed', signal: 'SIGABRT' });
    expect(describeExit(null, 'SIGKILL')).toEqual({ cause: 'killed', signal: 'SIGKILL' });
    expect(describeExit(null, 'SIGTERM')).toEqual({ cause: 'killed', signal: 'SIGTERM' });
    expect(describeExit(70, null)).toEqual({ cause: 'exited', code: 70 });
    expect(describeExit(null, null)).toEqual({ cause: 'exited', code: 0 });
  });
});
