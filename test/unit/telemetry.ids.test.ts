import { describe, expect, it } from 'vitest';
import { formatTraceparent, parseTraceparent, taskRootSpanId, taskTraceId, taskTraceparent } from '../../src/telemetry/ids.js';
import { startTracing, traceClock, tracing } from '../../src/telemetry/index.js';
import { tracingWanted } from '../../src/shared/config.js';
import { tracesUrl } from '../../src/telemetry/sdk.js';

const TASK = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';

describe('trace ids derived from the task', () => {
  it('the trace id is the task UUID without dashes, and the root span id is the same in every process', () => {
    expect(taskTraceId(TASK)).toBe('0193a1b2c3d47e5f8a9b0c1d2e3f4a5b');
    expect(taskTraceId(TASK.toUpperCase())).toBe('0193a1b2c3d47e5f8a9b0c1d2e3f4a5b');
    expect(taskRootSpanId(TASK)).toMatch(/^[0-9a-f]{16}$/);
    expect(taskRootSpanId(TASK)).toBe(taskRootSpanId(TASK.toUpperCase()));
    expect(taskRootSpanId(TASK)).not.toBe(taskRootSpanId('0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c'));
    expect(taskTraceparent(TASK)).toBe(`00-0193a1b2c3d47e5f8a9b0c1d2e3f4a5b-${taskRootSpanId(TASK)}-01`);
  });

  it('a task id that is not a UUID is refused, saying why', () => {
    expect(() => taskTraceId('task-1')).toThrow(TypeError);
    expect(() => taskTraceId('task-1')).toThrow('task id "task-1" is not a UUID; a trace id is derived from the task\'s UUID');
  });
});

describe('traceparent', () => {
  it('round-trips, from text or a header Buffer', () => {
    const tp = formatTraceparent('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7');
    expect(tp).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(parseTraceparent(tp)).toEqual({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', sampled: true });
    expect(parseTraceparent(Buffer.from(tp))).toEqual(parseTraceparent(tp));
    expect(parseTraceparent(formatTraceparent('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', false))!.sampled).toBe(false);
  });

  it.each([
    ['undefined', undefined],
    ['a number', 42],
    ['another version', '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
    ['a short trace id', '00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01'],
    ['an all-zero trace id', '00-00000000000000000000000000000000-00f067aa0ba902b7-01'],
    ['an all-zero span id', '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'],
  ])('%s is no traceparent', (_what, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });
});

describe('when tracing is on', () => {
  it.each([
    [{}, false],
    [{ WEFT_OTEL: '1' }, true],
    [{ WEFT_OTEL: 'true' }, true],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }, true],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }, true],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', WEFT_OTEL: '0' }, false],
  ] as Array<[NodeJS.ProcessEnv, boolean]>)('%j: %s', (env, wanted) => {
    expect(tracingWanted(env)).toBe(wanted);
  });

  it('with nothing asking for it, startTracing leaves it off and the clock costs nothing', async () => {
    expect(await startTracing({ service: 'weft-test', env: {} })).toBe(false);
    expect(tracing.enabled).toBe(false);
    expect(traceClock()).toBe(0);
  });

  it('spans go to the traces endpoint, or the base endpoint + /v1/traces', () => {
    expect(tracesUrl({})).toBe('http://localhost:4318/v1/traces');
    expect(tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toBe('http://collector:4318/v1/traces');
    expect(tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:1', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:2/traces' })).toBe('http://b:2/traces');
  });
});
