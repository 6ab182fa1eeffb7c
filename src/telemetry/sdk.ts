import { trace, type Tracer } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor, RandomIdGenerator, type IdGenerator } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../shared/paths.js';

/**
 * The OpenTelemetry SDK, loaded by `startTracing` (./index.ts) with a dynamic
 * import only when tracing is on: a process with tracing off never loads it.
 * Spans go in batches to an OTLP/HTTP endpoint as JSON (the standard
 * OTEL_EXPORTER_OTLP_* and OTEL_BSP_* variables apply).
 */

const DEFAULT_ENDPOINT = 'http://localhost:4318';

/** Where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces. */
export function tracesUrl(env: NodeJS.ProcessEnv): string {
  const own = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (own) return own;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || DEFAULT_ENDPOINT;
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}

/**
 * Random ids, except for a root span whose ids the facade asked for
 * (`forcedIds`, set just before that one synchronous startSpan): the SDK asks
 * for the span id first, then (having no parent) the trace id.
 */
class WeftIdGenerator implements IdGenerator {
  private readonly random = new RandomIdGenerator();
  constructor(private readonly forced: { traceId?: string; spanId?: string }) {}
  generateTraceId(): string {
    const id = this.forced.traceId;
    this.forced.traceId = undefined;
    return id ?? this.random.generateTraceId();
  }
  generateSpanId(): string {
    const id = this.forced.spanId;
    this.forced.spanId = undefined;
    return id ?? this.random.generateSpanId();
  }
}

function weftVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function startSdk(o: { service: string; env: NodeJS.ProcessEnv; forcedIds: { traceId?: string; spanId?: string } }): {
  tracer: Tracer;
  endpoint: string;
  service: string;
  flush: () => Promise<void>;
  shutdown: () => Promise<void>;
} {
  const endpoint = tracesUrl(o.env);
  const version = weftVersion();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: o.service, [ATTR_SERVICE_VERSION]: version }),
    idGenerator: new WeftIdGenerator(o.forcedIds),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint }))],
  });
  trace.setGlobalTracerProvider(provider);
  return {
    tracer: provider.getTracer('weft', version),
    endpoint,
    service: o.service,
    flush: () => provider.forceFlush(),
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
    },
  };
}
