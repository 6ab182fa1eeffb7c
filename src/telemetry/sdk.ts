import { trace, type Tracer } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  RandomIdGenerator,
  type IdGenerator,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../shared/paths.js';
import type { Logger } from '../shared/logger.js';

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

/** How often a failing endpoint is reported while it keeps failing. */
const FAILURE_REPORT_MS = 60_000;

/**
 * The OTLP exporter, saying when spans do not get through: OpenTelemetry
 * itself reports that only to its diag logger, silent by default, so a wrong
 * endpoint would lose every span without a word. Warns on the first failure,
 * then at most once a minute while it lasts, and once when spans go through again.
 */
class ReportingExporter implements SpanExporter {
  private failingSince = 0;
  private reportedAt = 0;
  private lost = 0;
  constructor(
    private readonly inner: SpanExporter,
    private readonly endpoint: string,
    private readonly log: Logger | undefined,
  ) {}
  export(spans: ReadableSpan[], done: Parameters<SpanExporter['export']>[1]): void {
    this.inner.export(spans, (result) => {
      if (result.code === 0) {
        if (this.failingSince) this.log?.info({ endpoint: this.endpoint, lost_spans: this.lost }, 'the OTLP endpoint takes spans again');
        this.failingSince = 0;
        this.lost = 0;
      } else {
        const t = Date.now();
        this.lost += spans.length;
        if (!this.failingSince) this.failingSince = t;
        if (t - this.reportedAt >= FAILURE_REPORT_MS) {
          this.reportedAt = t;
          this.log?.warn(
            { endpoint: this.endpoint, err: result.error?.message, lost_spans: this.lost },
            'spans could not be sent to the OTLP endpoint and are lost; check OTEL_EXPORTER_OTLP_ENDPOINT (a collector listening for OTLP/HTTP there) or unset it',
          );
        }
      }
      done(result);
    });
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** OTEL_EXPORTER_OTLP_TRACES_TIMEOUT or OTEL_EXPORTER_OTLP_TIMEOUT (ms, retries included), read from the environment given. */
function exportTimeout(env: NodeJS.ProcessEnv): number | undefined {
  const ms = Number(env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT ?? env.OTEL_EXPORTER_OTLP_TIMEOUT);
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

function weftVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function startSdk(o: { service: string; env: NodeJS.ProcessEnv; forcedIds: { traceId?: string; spanId?: string }; log?: Logger }): {
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
    spanProcessors: [
      new BatchSpanProcessor(new ReportingExporter(new OTLPTraceExporter({ url: endpoint, timeoutMillis: exportTimeout(o.env) }), endpoint, o.log)),
    ],
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
