/**
 * The runtime table (src/shared/runtimes.ts) and the addon number the bridged
 * runtimes alike: the addon exports its RuntimeId names by index, and
 * AddonBridge refuses an addon that disagrees.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

import { addonPath, checkRuntimeIndices } from '../../src/bridge/native-bridge.js';
import { BridgeLoadError } from '../../src/bridge/errors.js';
import { BRIDGE_RUNTIMES, RUNTIME_TABLE } from '../../src/shared/runtimes.js';

describe('bridge: runtime indices', () => {
  it('the built addon lists python, ruby, typescript at indices 0, 1, 2, as the runtime table says', () => {
    const addon = createRequire(import.meta.url)(addonPath()) as { runtimes: string[] };
    expect(addon.runtimes).toEqual(['python', 'ruby', 'typescript']);
    for (const row of RUNTIME_TABLE) if (row.bridgeIndex !== null) expect(addon.runtimes[row.bridgeIndex]).toBe(row.name);
    expect(BRIDGE_RUNTIMES).toEqual(addon.runtimes);
    expect(() => checkRuntimeIndices(addon, addonPath())).not.toThrow();
  });

  it('refuses an addon that numbers the runtimes otherwise, saying how to fix it', () => {
    const swapped = () => checkRuntimeIndices({ runtimes: ['ruby', 'python', 'typescript'] }, '/x/weft_bridge.node');
    expect(swapped).toThrow(BridgeLoadError);
    expect(swapped).toThrow(
      'the native bridge /x/weft_bridge.node numbers its runtimes [ruby, python, typescript], but the runtime table (src/shared/runtimes.ts) expects 0=python, 1=ruby, 2=typescript. ' +
        'Rebuild the addon from these sources with `npm run build:native`, or make the table and native/common/job.h agree.',
    );
    expect(() => checkRuntimeIndices({ runtimes: ['python', 'ruby', 'typescript', 'lua'] }, 'a')).toThrow(
      /numbers its runtimes \[python, ruby, typescript, lua\]/,
    );
    expect(() => checkRuntimeIndices({} as { runtimes: string[] }, 'old.node')).toThrow(/numbers its runtimes \[\]/);
  });
});
