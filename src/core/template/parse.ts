/**
 * Template parsing and validation (docs/templates.md, issue #2).
 *
 * Two entry points share one set of checks:
 *   - `parseTemplate(yamlText, file)` for template files (problems carry line/column),
 *   - `validateTemplateObject(obj, file)` for JSON templates sent to the HTTP API.
 *
 * Checks run in three passes and every problem of every pass is collected
 * before anything is thrown, so a user fixes a template in one round:
 *   1. YAML syntax (nothing else can be trusted if the text does not parse),
 *   2. the shape, with a JSON Schema (ajv, allErrors) whose errors are mapped
 *      to sentences naming the field path and the fix,
 *   3. hand-written semantic checks: semver, the dependency graph, batches,
 *      retry bounds that relate two fields, and `input_schema` itself.
 * Pure: no I/O. Reading files is load.ts's job.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { closest, distance } from 'fastest-levenshtein';
import semver from 'semver';
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Document, type Node } from 'yaml';
import { TemplateError, type TemplateProblem } from './errors.js';
import { findCycle, type GraphStep } from './graph.js';
import { createInputSchemaAjv, pointerToSegments as pointerSegments, schemaPatternProblems } from './input-schema.js';
import {
  BACKOFF_KINDS,
  DEFAULT_BATCH,
  DEFAULT_RETRY,
  DEFAULT_TIMEOUT_MS,
  LIMITS,
  NAME_PATTERN,
  STEP_TYPES,
  WAITING_STEP_TYPES,
  type BatchConfig,
  type RetryPolicy,
  type StepDefinition,
  type StepType,
  type TemplateDefinition,
  type TemplateSchedule,
  type ChildContext,
  type ValuePath,
  type WaitSpec,
} from './types.js';
import { RUNTIMES, type Runtime } from '../../shared/runtimes.js';
import { CATCH_UP_POLICIES, OVERLAP_POLICIES, scheduleSpec } from '../schedule.js';
import { ValidationError } from '../../shared/errors.js';
import { DURATION_EXAMPLES, durationMs } from '../duration.js';

type Segment = string | number;

/** A problem before it is given a printable path and a position. */
interface Finding {
  at: Segment[];
  message: string;
  hint: string;
  /** Point at the field's key rather than its value (unknown fields). */
  atKey?: boolean;
}

/** What the checks may ask of the source text; absent for JSON input. */
interface SourceView {
  position(at: Segment[], atKey: boolean): { line: number; column: number } | undefined;
  /** The literal text of a scalar, e.g. `1.0` for a version YAML read as the number 1. */
  text(at: Segment[]): string | undefined;
}

/**
 * Parse and validate a YAML template. Returns the definition with every
 * default filled in; throws `TemplateError` listing every problem found.
 *
 * @example
 *   const def = parseTemplate(await readFile('templates/linear.yaml', 'utf8'), 'linear.yaml');
 *   def.steps[0].retry.max_attempts // 3 unless the file says otherwise
 */
export function parseTemplate(source: string, file: string): TemplateDefinition {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new TemplateError(
      file,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return {
          path: '',
          message: `YAML syntax error: ${yamlMessage(e.message)}`,
          hint: yamlHint(e.code),
          ...(pos ? { line: pos.line, column: pos.col } : {}),
        };
      }),
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw new TemplateError(file, [
      {
        path: '',
        message: `YAML could not be read: ${(err as Error).message}`,
        hint: 'remove the aliases (*name) that expand into a very large document',
      },
    ]);
  }
  return check(value, file, yamlSourceView(doc, lineCounter));
}

/**
 * Validate a template given as a plain object (JSON from the HTTP API):
 * the same checks as `parseTemplate`, without line numbers.
 *
 * @example
 *   const def = validateTemplateObject(request.body, 'request body');
 */
export function validateTemplateObject(obj: unknown, file: string): TemplateDefinition {
  return check(obj, file, undefined);
}

function check(value: unknown, file: string, view: SourceView | undefined): TemplateDefinition {
  const findings: Finding[] = [];
  if (value === null || value === undefined) {
    findings.push({
      at: [],
      message: 'the template is empty; expected a mapping with namespace, name, version and steps',
      hint: 'start from the example in docs/templates.md',
    });
  } else if (!isPlainObject(value)) {
    findings.push({
      at: [],
      message: `the template is ${describeValue(value)}; expected a mapping with namespace, name, version and steps`,
      hint: 'write the template as "key: value" lines at the top level (namespace:, name:, version:, steps:)',
    });
  } else {
    findings.push(...shapeFindings(value));
    findings.push(...semanticFindings(value, view));
  }
  if (findings.length > 0) throw new TemplateError(file, toProblems(findings, view));
  return normalise(value as RawTemplate);
}

// ───────────────────────────── shape (JSON Schema) ─────────────────────────────

const NAME = { type: 'string', pattern: NAME_PATTERN.source };
const range = (l: { min: number; max: number }) => ({ type: 'integer', minimum: l.min, maximum: l.max });

const RETRY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    max_attempts: range(LIMITS.max_attempts),
    backoff: { type: 'string', enum: [...BACKOFF_KINDS] },
    base_ms: range(LIMITS.base_ms),
    max_ms: range(LIMITS.max_ms),
  },
};

const BATCH_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['worker_template'],
  properties: {
    worker_template: NAME,
    batch_size: range(LIMITS.batch_size),
    max_workers: range(LIMITS.max_workers),
  },
};

const STEP_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: NAME,
    handler: { type: 'string', pattern: '^\\S+$' },
    description: { type: 'string' },
    runtime: { type: 'string', enum: [...RUNTIMES] },
    type: { type: 'string', enum: [...STEP_TYPES] },
    depends_on: { type: 'array', items: { type: 'string' }, uniqueItems: true },
    inputs: { type: 'object' },
    retry: RETRY_SCHEMA,
    timeout_ms: range(LIMITS.timeout_ms),
    batch: BATCH_SCHEMA,
    // Steps that wait (checked by hand: waitFindings).
    duration: { type: 'string' },
    until: { type: 'string' },
    timeout: { type: 'string' },
    on_timeout: {},
    payload_schema: { type: 'object' },
    // A workflow step's child template (its context mapping and version are checked by hand: workflowFindings).
    workflow: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: { namespace: NAME, name: NAME, version: {}, context: {} },
    },
  },
};

/** A template file's `schedules:` entry (docs/schedules.md); cron and timezone are checked by hand. */
const SCHEDULE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'cron'],
  properties: {
    name: { type: 'string', pattern: '^[a-z][a-z0-9_-]{0,99}$' },
    cron: { type: 'string' },
    timezone: { type: 'string' },
    context: { type: 'object' },
    overlap: { type: 'string', enum: [...OVERLAP_POLICIES] },
    catch_up: { type: 'string', enum: [...CATCH_UP_POLICIES] },
    paused: { type: 'boolean' },
  },
};

const TEMPLATE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['namespace', 'name', 'version', 'steps'],
  properties: {
    namespace: NAME,
    name: NAME,
    // Checked by hand (semver, and YAML reading `1.0` as a number).
    version: {},
    description: { type: 'string' },
    runtime: { type: 'string', enum: [...RUNTIMES] },
    input_schema: { type: 'object' },
    steps: { type: 'array', minItems: 1, maxItems: LIMITS.steps.max, items: STEP_SCHEMA },
    schedules: { type: 'array', items: SCHEDULE_SCHEMA },
  },
};

let shapeValidator: ValidateFunction | undefined;

function shapeFindings(value: Record<string, unknown>): Finding[] {
  shapeValidator ??= new Ajv({ allErrors: true, verbose: true, strict: true }).compile(TEMPLATE_SCHEMA);
  if (shapeValidator(value)) return [];
  const errors = shapeValidator.errors ?? [];
  // A value of the wrong type makes every other complaint about it noise.
  const typeErrorPaths = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  const out: Finding[] = [];
  for (const e of errors) {
    if (e.keyword !== 'type' && e.keyword !== 'required' && e.keyword !== 'additionalProperties' && typeErrorPaths.has(e.instancePath)) continue;
    out.push(describeShapeError(e, value));
  }
  return out;
}

const FIELD_EXAMPLES: Record<string, string> = {
  namespace: 'namespace: my_namespace',
  name: 'name: my_workflow',
  version: 'version: 1.0.0',
  steps: 'steps: followed by a list of steps ("- name: first_step")',
  handler: 'handler: <key resolved by the step runtime>, e.g. handler: linear.square',
  worker_template: 'worker_template: <name of a batch_worker step>',
};

const EXPECTED: Record<string, string> = {
  object: 'a mapping (key: value lines)',
  array: 'a list',
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
};

function describeShapeError(e: ErrorObject, root: unknown): Finding {
  const at = pointerSegments(e.instancePath);
  const path = formatPath(at);
  const where = at.length === 0 ? 'the top level' : path;
  const inWhere = at.length === 0 ? 'at the top level' : `in ${path}`;
  const found = valueAt(root, at);
  const last = at[at.length - 1];
  switch (e.keyword) {
    case 'required': {
      const field = (e.params as { missingProperty: string }).missingProperty;
      const stepName = stepLabel(root, at);
      return {
        at,
        message: `${at.length === 0 ? 'the template' : where}${stepName} is missing the required field "${field}"`,
        hint: `add ${FIELD_EXAMPLES[field] ?? `${field}: …`}`,
      };
    }
    case 'additionalProperties': {
      const field = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((e.parentSchema as { properties: Record<string, unknown> }).properties);
      const guess = suggest(field, known);
      return {
        at: [...at, field],
        atKey: true,
        message: `unknown field "${field}" ${inWhere}${guess ? `; did you mean "${guess}"?` : ''}`,
        hint: guess ? `rename it to "${guess}"` : `remove it; the fields allowed ${inWhere} are: ${known.join(', ')}`,
      };
    }
    case 'type': {
      const expected = EXPECTED[String((e.params as { type: string }).type)] ?? String((e.params as { type: string }).type);
      return { at, message: `${path} is ${describeValue(found)}; expected ${expected}`, hint: typeHint(at, found, expected) };
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: string[] }).allowedValues;
      const what = last === 'runtime' ? 'runtime' : last === 'type' ? 'step type' : last === 'backoff' ? 'backoff kind' : 'value';
      const guess = suggest(String(found), allowed);
      return {
        at,
        message: `${path} is "${String(found)}", which is not a known ${what}; allowed: ${allowed.join(', ')}${guess ? `; did you mean "${guess}"?` : ''}`,
        hint: `use one of: ${allowed.join(', ')}`,
      };
    }
    case 'pattern': {
      if (last === 'handler') {
        return {
          at,
          message: `${path} is ${JSON.stringify(found)}; a handler key cannot be empty or contain spaces`,
          hint: 'write the key your handler is registered under, e.g. handler: linear.square',
        };
      }
      return {
        at,
        message: `${path} ${JSON.stringify(found)} is not a valid name; names must match [a-z][a-z0-9_]* (a lowercase letter, then lowercase letters, digits or underscores)`,
        hint: `rename it, e.g. "${suggestName(String(found))}"`,
      };
    }
    case 'minimum':
    case 'maximum': {
      const limit = LIMITS[String(last) as keyof typeof LIMITS] as { min: number; max: number } | undefined;
      const bounds = limit ? `between ${limit.min} and ${limit.max}` : `${e.keyword === 'minimum' ? '>=' : '<='} ${(e.params as { limit: number }).limit}`;
      return {
        at,
        message: `${path} is ${String(found)}, out of range; it must be ${bounds}`,
        hint: `set ${String(last)} to a value ${bounds}`,
      };
    }
    case 'minItems':
      return {
        at,
        message: `${path} is an empty list; a template needs at least one step`,
        hint: 'add a step: "- name: first_step" with "handler: <key>" below it',
      };
    case 'maxItems':
      return {
        at,
        message: `${path} has ${(found as unknown[]).length} steps; at most ${LIMITS.steps.max} are allowed`,
        hint: 'split the workflow into several templates',
      };
    case 'uniqueItems': {
      const { i, j } = e.params as { i: number; j: number };
      const later = Math.max(i, j);
      const dup = (found as unknown[])[later];
      return {
        at: [...at, later],
        message: `${path} lists ${JSON.stringify(dup)} more than once`,
        hint: `list each dependency once: remove the repeated ${JSON.stringify(dup)}`,
      };
    }
    default:
      return { at, message: `${path} ${e.message ?? 'is invalid'}`, hint: 'see docs/templates.md for the format' };
  }
}

function typeHint(at: Segment[], found: unknown, expected: string): string {
  const field = at[at.length - 1];
  if (field === 'depends_on') {
    return typeof found === 'string'
      ? `write a list of step names: depends_on: [${found}]`
      : 'write a list of step names, e.g. depends_on: [first_step], or remove the line';
  }
  if (field === 'steps') return 'write steps as a list; each step starts with "- name: <step_name>"';
  if (field === 'inputs') return 'write inputs as a mapping, e.g. inputs: { batch_size: 200 }, or remove the line';
  if (field === 'input_schema') return 'write input_schema as a JSON Schema mapping, e.g. input_schema: { type: object }';
  if (typeof field === 'number' && at[0] === 'steps' && at.length === 2)
    return 'each step is a mapping: "- name: <step_name>" followed by "handler: <key>" at the same indentation';
  if (expected === 'a whole number') return `write ${formatPath(at)} as a whole number without quotes, e.g. 1000`;
  return `write ${formatPath(at)} as ${expected}`;
}

// ───────────────────────────── semantic checks ─────────────────────────────

interface RawStep {
  name?: unknown;
  type?: unknown;
  depends_on?: unknown;
  retry?: unknown;
  batch?: unknown;
  [k: string]: unknown;
}
interface RawTemplate {
  [k: string]: unknown;
}

function semanticFindings(t: RawTemplate, view: SourceView | undefined): Finding[] {
  const out: Finding[] = [];
  if ('version' in t) out.push(...versionFindings(t.version, view));
  if (isPlainObject(t.input_schema)) out.push(...inputSchemaFindings(t.input_schema));
  if (Array.isArray(t.steps)) out.push(...stepFindings(t.steps), ...waitFindings(t.steps));
  if (Array.isArray(t.schedules)) out.push(...scheduleFindings(t.schedules));
  return out;
}

/** Each schedule's cron and timezone can be read, and no two share a name. */
function scheduleFindings(schedules: unknown[]): Finding[] {
  const out: Finding[] = [];
  const seen = new Set<string>();
  schedules.forEach((raw, i) => {
    if (!isPlainObject(raw) || typeof raw.name !== 'string' || typeof raw.cron !== 'string') return;
    if (seen.has(raw.name)) {
      out.push({ at: ['schedules', i, 'name'], message: `schedules[${i}].name "${raw.name}" is used twice`, hint: 'give each schedule its own name' });
    }
    seen.add(raw.name);
    try {
      scheduleSpec(
        { name: raw.name, template: 'x/x', cron: raw.cron, timezone: typeof raw.timezone === 'string' ? raw.timezone : undefined },
        `schedules[${i}].`,
      );
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      const field = err.path.slice(`schedules[${i}].`.length);
      out.push({
        at: ['schedules', i, field],
        message: err.message,
        hint:
          field === 'timezone' ? 'use an IANA zone such as Europe/Berlin or UTC' : 'write five cron fields, e.g. "0 9 * * MON-FRI", or six with seconds first',
      });
    }
  });
  return out;
}

function versionFindings(v: unknown, view: SourceView | undefined): Finding[] {
  const at = ['version'];
  if (typeof v === 'string') {
    if (semver.valid(v) === v) return [];
    const fixed = semver.valid(v) ?? semver.coerce(v)?.version;
    return [
      {
        at,
        message: `version "${v}" is not a semantic version; it must look like 1.0.0 (major.minor.patch)`,
        hint: fixed ? `write version: ${fixed}` : 'write version: 1.0.0',
      },
    ];
  }
  if (typeof v === 'number') {
    const text = view?.text(at) ?? String(v);
    const fixed = semver.coerce(text)?.version ?? '1.0.0';
    return [
      {
        at,
        message: `version ${text} is not a semantic version; it must look like 1.0.0 (major.minor.patch)`,
        hint: `write version: ${fixed}`,
      },
    ];
  }
  return [
    {
      at,
      message: `version is ${describeValue(v)}; expected a semantic version such as 1.0.0`,
      hint: 'write version: 1.0.0',
    },
  ];
}

/** Problems of a JSON Schema written at `where` (input_schema, or a wait step's payload_schema). */
function inputSchemaFindings(schema: Record<string, unknown>, where: Segment[] = ['input_schema']): Finding[] {
  const name = formatPath(where);
  const ajv = createInputSchemaAjv();
  let valid: boolean;
  try {
    valid = ajv.validateSchema(schema) as boolean;
  } catch (err) {
    // ajv throws when $schema names a meta-schema it does not have (e.g. draft 2020-12).
    return [
      {
        at: typeof schema.$schema === 'string' ? [...where, '$schema'] : where,
        message: `${name} cannot be checked: ${(err as Error).message}; weft supports JSON Schema draft-07`,
        hint: 'remove $schema, or write $schema: "http://json-schema.org/draft-07/schema#", and use draft-07 keywords',
      },
    ];
  }
  if (!valid) {
    const errors = (ajv.errors ?? []).filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'oneOf');
    // Keep one complaint per location; the meta-schema's alternatives repeat themselves.
    const seen = new Set<string>();
    const out: Finding[] = [];
    for (const e of errors.length > 0 ? errors : (ajv.errors ?? [])) {
      if (seen.has(e.instancePath)) continue;
      seen.add(e.instancePath);
      const at: Segment[] = [...where, ...pointerSegments(e.instancePath)];
      const found = valueAt(schema, pointerSegments(e.instancePath));
      const allowed = (e.params as { allowedValues?: unknown[] }).allowedValues;
      out.push({
        at,
        message: `${name} is not a valid JSON Schema: ${formatPath(at)} is ${describeValue(found)} and ${e.message ?? 'is invalid'}${allowed ? ` (${allowed.join(', ')})` : ''}`,
        hint: `fix ${name} so it is a JSON Schema (draft-07), e.g. { type: object, required: [x], properties: { x: { type: integer } } }`,
      });
    }
    return out;
  }
  const patterns = schemaPatternProblems(schema);
  if (patterns.length > 0) {
    return patterns.map((p) => ({
      at: [...where, ...p.at],
      message: `${formatPath([...where, ...p.at])}: ${p.message}`,
      hint: 'schema patterns run on a linear-time engine (RE2): no lookaround or backreferences; a string checked by a pattern is at most 10000 characters',
    }));
  }
  try {
    ajv.compile(schema);
    return [];
  } catch (err) {
    return [
      {
        at: where,
        message: `${name} is not a valid JSON Schema: ${(err as Error).message}`,
        hint: `make every $ref point at a definition inside ${name}`,
      },
    ];
  }
}

function stepFindings(steps: unknown[]): Finding[] {
  const out: Finding[] = [];
  // Only steps whose shape is good enough to reason about take part.
  const named: { index: number; step: RawStep; name: string }[] = [];
  steps.forEach((s, index) => {
    if (isPlainObject(s) && typeof s.name === 'string') named.push({ index, step: s, name: s.name });
  });
  const firstIndex = new Map<string, number>();
  for (const { index, name } of named) {
    const prev = firstIndex.get(name);
    if (prev === undefined) {
      firstIndex.set(name, index);
      continue;
    }
    out.push({
      at: ['steps', index, 'name'],
      message: `steps[${index}].name "${name}" is already the name of steps[${prev}]; step names must be unique within a template`,
      hint: `rename one of the two steps called "${name}"`,
    });
  }
  const names = [...firstIndex.keys()];
  const typeOf = (s: RawStep): StepType =>
    typeof s.type === 'string' && (STEP_TYPES as readonly string[]).includes(s.type) ? (s.type as StepType) : 'standard';
  const depsOf = (s: RawStep): string[] => (Array.isArray(s.depends_on) ? s.depends_on.filter((d): d is string => typeof d === 'string') : []);

  // Dependencies: unknown steps and self-dependencies.
  for (const { index, step, name } of named) {
    if (!Array.isArray(step.depends_on)) continue;
    step.depends_on.forEach((dep, j) => {
      if (typeof dep !== 'string') return;
      const at = ['steps', index, 'depends_on', j];
      if (dep === name) {
        out.push({
          at,
          message: `steps[${index}].depends_on names the step itself ("${name}"); a step cannot wait for itself`,
          hint: `remove "${name}" from its own depends_on`,
        });
      } else if (!firstIndex.has(dep)) {
        const guess = suggest(dep, names);
        out.push({
          at,
          message: `steps[${index}].depends_on names "${dep}", which is not a step of this template; steps are: ${names.join(', ')}`,
          hint: guess ? `did you mean "${guess}"? change it to "${guess}"` : `add a step named "${dep}" or remove it from depends_on`,
        });
      }
    });
  }

  // Cycles: report each independent one (remove an edge of each found cycle and look again).
  const graph: { name: string; depends_on: string[] }[] = named
    .filter(({ index, name }) => firstIndex.get(name) === index)
    .map(({ step, name }) => ({ name, depends_on: depsOf(step).filter((d) => d !== name && firstIndex.has(d)) }));
  for (let round = 0; round < 10; round++) {
    const cycle = findCycle(graph as GraphStep[]);
    if (!cycle) break;
    // cycle = [a, b, …, a] in run order: b depends on a, and so on.
    const first = cycle[1]!; // a cycle has at least two entries
    const edges = cycle.slice(1).map((n, i) => `${n} depends on ${cycle[i]}`);
    out.push({
      at: ['steps', firstIndex.get(first)!, 'depends_on'],
      message: `steps form a dependency cycle: ${cycle.join(' → ')}; none of these steps could ever start`,
      hint: `remove one of these dependencies: ${edges.join(', ')}`,
    });
    const g = graph.find((s) => s.name === first)!;
    g.depends_on = g.depends_on.filter((d) => d !== cycle[0]);
  }

  // Step types: batches, deferred convergence.
  const workerUsers = new Map<string, number>();
  for (const { index, step, name } of named) {
    const type = typeOf(step);
    const label = `steps[${index}] ("${name}")`;
    if (type === 'batchable' && step.batch === undefined) {
      out.push({
        at: ['steps', index],
        message: `${label} is batchable but has no batch section; weft would not know which batch_worker step to create`,
        hint: 'add batch: { worker_template: <name of a batch_worker step>, batch_size: 100, max_workers: 10 }',
      });
    }
    if (type !== 'batchable' && step.batch !== undefined) {
      out.push({
        at: ['steps', index, 'batch'],
        atKey: true,
        message: `${label} has a batch section but its type is ${type}; batch is only allowed on batchable steps`,
        hint: 'set type: batchable, or remove batch',
      });
    }
    if (type === 'batchable' && isPlainObject(step.batch) && typeof step.batch.worker_template === 'string') {
      const worker = step.batch.worker_template;
      const at = ['steps', index, 'batch', 'worker_template'];
      const workerIndex = firstIndex.get(worker);
      const workers = named.filter((n) => typeOf(n.step) === 'batch_worker').map((n) => n.name);
      if (workerIndex === undefined) {
        out.push({
          at,
          message: `steps[${index}].batch.worker_template names "${worker}", which is not a step of this template; batch_worker steps are: ${workers.length ? workers.join(', ') : '(none)'}`,
          hint: workers.length ? `name one of: ${workers.join(', ')}` : `add a step named "${worker}" with type: batch_worker`,
        });
      } else {
        const target = named.find((n) => n.index === workerIndex)!;
        const targetType = typeOf(target.step);
        if (targetType !== 'batch_worker') {
          out.push({
            at,
            message: `steps[${index}].batch.worker_template names "${worker}", which is a ${targetType} step, not a batch_worker step`,
            hint: `set type: batch_worker on step "${worker}", or name a batch_worker step`,
          });
        } else if (workerUsers.has(worker)) {
          out.push({
            at,
            message: `steps[${index}].batch.worker_template names "${worker}", which steps[${workerUsers.get(worker)}] already uses; each batch_worker step serves one batchable step`,
            hint: `add a second batch_worker step for steps[${index}]`,
          });
        } else {
          workerUsers.set(worker, index);
        }
      }
    }
    if (type === 'deferred_convergence' && depsOf(step).length === 0 && (step.depends_on === undefined || Array.isArray(step.depends_on))) {
      out.push({
        at: step.depends_on === undefined ? ['steps', index] : ['steps', index, 'depends_on'],
        message: `${label} is a deferred_convergence step with no dependencies; it would have nothing to wait for`,
        hint: 'list the steps it converges in depends_on, or make it a standard step',
      });
    }
    if (isPlainObject(step.retry)) {
      const base = typeof step.retry.base_ms === 'number' ? step.retry.base_ms : DEFAULT_RETRY.base_ms;
      const max = typeof step.retry.max_ms === 'number' ? step.retry.max_ms : DEFAULT_RETRY.max_ms;
      if (base > max) {
        const defaulted = typeof step.retry.max_ms !== 'number' ? ` (max_ms defaults to ${DEFAULT_RETRY.max_ms})` : '';
        out.push({
          at: ['steps', index, 'retry', 'base_ms'],
          message: `steps[${index}].retry.base_ms is ${base}, greater than max_ms ${max}${defaulted}; the first delay would exceed the largest delay allowed`,
          hint: 'lower base_ms or raise max_ms so that base_ms <= max_ms',
        });
      }
    }
  }
  // A worker's instances are created by its batchable step and wait for it
  // alone (core/plan.ts), so its depends_on must say exactly that.
  for (const [worker, ownerIndex] of workerUsers) {
    const w = named.find((n) => n.name === worker && n.index === firstIndex.get(worker))!;
    const owner = named.find((n) => n.index === ownerIndex)!.name;
    if (w.step.depends_on !== undefined && !Array.isArray(w.step.depends_on)) continue;
    const deps = depsOf(w.step);
    if (deps.length === 1 && deps[0] === owner) continue;
    out.push({
      at: w.step.depends_on === undefined ? ['steps', w.index] : ['steps', w.index, 'depends_on'],
      message: `steps[${w.index}] ("${worker}") is the batch_worker of "${owner}", so it must depend on exactly [${owner}]; found [${deps.join(', ')}]`,
      hint: `write depends_on: [${owner}] (worker instances are created by ${owner} and wait only for it)`,
    });
  }
  // Worker instances are named <worker>_000, <worker>_001, …: no step may take such a name.
  for (const worker of workerUsers.keys()) {
    const pattern = new RegExp(`^${worker}_[0-9]{3,}$`);
    for (const { index, name } of named) {
      if (!pattern.test(name)) continue;
      out.push({
        at: ['steps', index, 'name'],
        message: `steps[${index}].name "${name}" has the form of a worker instance of batch_worker "${worker}" (${worker}_001, ${worker}_002, …) and would clash with one`,
        hint: `rename the step, e.g. "${name.replace(/_([0-9]+)$/, '_step_$1')}"`,
      });
    }
  }
  // A worker no batchable step names could never be created. Only judged
  // when every batchable step's worker_template could be read.
  const everyWorkerKnown = named.every(
    (n) => typeOf(n.step) !== 'batchable' || (isPlainObject(n.step.batch) && typeof n.step.batch.worker_template === 'string'),
  );
  for (const { index, step, name } of everyWorkerKnown ? named : []) {
    if (typeOf(step) !== 'batch_worker' || workerUsers.has(name)) continue;
    const namedBySomeone = named.some((n) => isPlainObject(n.step.batch) && n.step.batch.worker_template === name);
    if (namedBySomeone) continue;
    out.push({
      at: ['steps', index, 'type'],
      message: `steps[${index}] ("${name}") is a batch_worker step, but no batchable step names it in batch.worker_template, so it could never run`,
      hint: `add batch: { worker_template: ${name} } to a batchable step, or change this step's type`,
    });
  }
  return out;
}

// ───────────────────────────── steps that wait ─────────────────────────────

/** Fields only a sleep, wait or workflow step has, and the type that has each. */
const WAIT_FIELDS: Record<string, 'sleep' | 'wait' | 'workflow'> = {
  duration: 'sleep',
  until: 'sleep',
  timeout: 'wait',
  on_timeout: 'wait',
  payload_schema: 'wait',
  workflow: 'workflow',
};

/**
 * `sleep` and `wait` steps run no handler; every other step needs one. A
 * sleep has a `duration` or an `until` (a path into the context or a parent's
 * result); a wait may have a `timeout`, an `on_timeout` (`fail`, the default,
 * or `{ result: … }`) and a `payload_schema` its signals must match.
 */
function waitFindings(steps: unknown[]): Finding[] {
  const out: Finding[] = [];
  steps.forEach((s, index) => {
    if (!isPlainObject(s) || typeof s.name !== 'string') return;
    const type = typeof s.type === 'string' ? s.type : 'standard';
    if (!(STEP_TYPES as readonly string[]).includes(type)) return;
    const label = `steps[${index}] ("${s.name}")`;
    const waits = WAITING_STEP_TYPES.has(type as StepType);
    if (waits && s.handler !== undefined) {
      out.push({
        at: ['steps', index, 'handler'],
        atKey: true,
        message: `${label} is a ${type} step, which runs no handler; it waits in the database without a worker`,
        hint: 'remove handler, or make it a standard step',
      });
    }
    if (!waits && s.handler === undefined) {
      out.push({
        at: ['steps', index],
        message: `${label} is missing the required field "handler"`,
        hint: `add ${FIELD_EXAMPLES.handler} (only sleep, wait and workflow steps have none)`,
      });
    }
    for (const [field, owner] of Object.entries(WAIT_FIELDS)) {
      if (s[field] === undefined || owner === type) continue;
      out.push({
        at: ['steps', index, field],
        atKey: true,
        message: `${label} has ${field}, which only a ${owner} step has; its type is ${type}`,
        hint: `set type: ${owner}, or remove ${field}`,
      });
    }
    if (waits && s.timeout_ms !== undefined) {
      out.push({
        at: ['steps', index, 'timeout_ms'],
        atKey: true,
        message: `${label} is a ${type} step: timeout_ms bounds a handler's run, and it runs none`,
        hint:
          type === 'wait'
            ? 'write timeout: 3d to bound the wait'
            : type === 'sleep'
              ? 'remove timeout_ms; the duration says how long it sleeps'
              : "remove timeout_ms; the child task's own steps have their timeouts",
      });
    }
    if (type === 'sleep') out.push(...sleepFindings(s, index, label));
    if (type === 'wait') out.push(...waitStepFindings(s, index, label));
    if (type === 'workflow') out.push(...workflowFindings(s, index, label));
  });
  return out;
}

function durationFinding(s: Record<string, unknown>, index: number, field: string, label: string): Finding | undefined {
  const v = s[field];
  if (typeof v !== 'string') return undefined; // the shape check said so
  const ms = durationMs(v);
  const { min, max } = LIMITS.wait_ms;
  if (ms !== undefined && ms >= min && ms <= max) return undefined;
  return {
    at: ['steps', index, field],
    message:
      ms === undefined
        ? `steps[${index}].${field} of ${label} is ${JSON.stringify(v)}, not a duration; write ${DURATION_EXAMPLES}`
        : `steps[${index}].${field} of ${label} is ${JSON.stringify(v)}; it must be between 1ms and 366d`,
    hint: `write e.g. ${field}: 3d`,
  };
}

function sleepFindings(s: Record<string, unknown>, index: number, label: string): Finding[] {
  if ((s.duration === undefined) === (s.until === undefined)) {
    return [
      {
        at: ['steps', index],
        message: `${label} is a sleep step and needs exactly one of duration (how long) and until (a time in the context or a parent's result)`,
        hint: 'write duration: 3d, or until: context.remind_at',
      },
    ];
  }
  const d = durationFinding(s, index, 'duration', label);
  if (d) return [d];
  if (typeof s.until !== 'string') return [];
  const [head, ...path] = s.until.split('.');
  const deps = Array.isArray(s.depends_on) ? s.depends_on.filter((x): x is string => typeof x === 'string') : [];
  if (path.length === 0 || path.some((p) => p === '') || (head !== 'context' && !deps.includes(head!))) {
    return [
      {
        at: ['steps', index, 'until'],
        message:
          `steps[${index}].until of ${label} is ${JSON.stringify(s.until)}; it must be context.<path> (the task's context) ` +
          `or <parent>.<path> (the result of a step in its depends_on${deps.length ? `: ${deps.join(', ')}` : ', which is empty'})`,
        hint: deps.length ? `write until: context.remind_at, or until: ${deps[0]}.remind_at` : 'write until: context.remind_at',
      },
    ];
  }
  return [];
}

function waitStepFindings(s: Record<string, unknown>, index: number, label: string): Finding[] {
  const out: Finding[] = [];
  const d = durationFinding(s, index, 'timeout', label);
  if (d) out.push(d);
  const onTimeout = s.on_timeout;
  if (onTimeout !== undefined) {
    const valid = onTimeout === 'fail' || (isPlainObject(onTimeout) && Object.keys(onTimeout).length === 1 && 'result' in onTimeout);
    if (!valid) {
      out.push({
        at: ['steps', index, 'on_timeout'],
        message: `steps[${index}].on_timeout of ${label} is ${describeValue(onTimeout)}; it must be fail or a mapping with one key, result`,
        hint: 'write on_timeout: fail (the step and its task fail), or on_timeout: { result: { approved: false } } (the step completes with that result)',
      });
    } else if (s.timeout === undefined) {
      out.push({
        at: ['steps', index, 'on_timeout'],
        atKey: true,
        message: `${label} has on_timeout but no timeout, so it could never time out`,
        hint: 'add timeout: 3d, or remove on_timeout',
      });
    }
  }
  if (isPlainObject(s.payload_schema)) out.push(...inputSchemaFindings(s.payload_schema, ['steps', index, 'payload_schema']));
  return out;
}

/**
 * A workflow step names its child template (`workflow: { name, namespace?,
 * version? }`) and may build the child's context from its own: `context:
 * <path>` (a mapping found there), or `context: { key: <path> | { value: … } }`.
 * A path is `context`, `context.<path>`, `<parent>` or `<parent>.<path>`,
 * a parent being a step of its depends_on.
 */
function workflowFindings(s: Record<string, unknown>, index: number, label: string): Finding[] {
  const at = ['steps', index, 'workflow'];
  if (s.workflow === undefined) {
    return [
      {
        at: ['steps', index],
        message: `${label} is a workflow step and needs workflow: the template it runs as a child task`,
        hint: 'write workflow: { name: charge_card }, with namespace: and version: when they differ from this template',
      },
    ];
  }
  if (!isPlainObject(s.workflow)) return []; // the shape check said so
  const out: Finding[] = [];
  const v = s.workflow.version;
  if (v !== undefined && (typeof v !== 'string' || semver.valid(v) !== v)) {
    out.push({
      at: [...at, 'version'],
      message: `${formatPath([...at, 'version'])} of ${label} is ${describeValue(v)}; it must be a semantic version such as 1.0.0`,
      hint: 'write version: "1.0.0" (quoted), or leave it out to run the newest registered version',
    });
  }
  const deps = Array.isArray(s.depends_on) ? s.depends_on.filter((x): x is string => typeof x === 'string') : [];
  const ctx = s.workflow.context;
  const pathProblem = (text: unknown, where: Segment[]): Finding | undefined => {
    if (typeof text === 'string' && valuePath(text, deps)) return undefined;
    return {
      at: where,
      message:
        `${formatPath(where)} of ${label} is ${describeValue(text)}; a value of the child's context is a path, context.<path> (this task's context) ` +
        `or <parent>.<path> (the result of a step in its depends_on${deps.length ? `: ${deps.join(', ')}` : ', which is empty'}), or { value: <a literal> }`,
      hint: deps.length ? `write e.g. context.order_id, ${deps[0]}.amount or { value: EUR }` : 'write e.g. context.order_id or { value: EUR }',
    };
  };
  if (typeof ctx === 'string') {
    const p = pathProblem(ctx, [...at, 'context']);
    if (p) out.push(p);
  } else if (isPlainObject(ctx)) {
    for (const [key, value] of Object.entries(ctx)) {
      if (isPlainObject(value) && Object.keys(value).length === 1 && 'value' in value) continue;
      const p = pathProblem(value, [...at, 'context', key]);
      if (p) out.push(p);
    }
  } else if (ctx !== undefined) {
    out.push({
      at: [...at, 'context'],
      message: `${formatPath([...at, 'context'])} of ${label} is ${describeValue(ctx)}; it must be a path (the child's whole context) or a mapping of the child's context keys`,
      hint: 'write context: { amount: context.amount, card: tokenize.card_token }',
    });
  }
  return out;
}

/** `context`, `context.a.b`, `<parent>`, `<parent>.a.b` (a parent of `deps`); undefined for anything else. */
function valuePath(text: string, deps: readonly string[]): ValuePath | undefined {
  const [head, ...path] = text.split('.');
  if (path.some((p) => p === '')) return undefined;
  if (head === 'context') return { from: 'context', path };
  return head && deps.includes(head) ? { from: 'step', step: head, path } : undefined;
}

function childContext(ctx: unknown, deps: readonly string[]): ChildContext | undefined {
  if (typeof ctx === 'string') return { path: valuePath(ctx, deps)! };
  if (!isPlainObject(ctx)) return undefined;
  const fields: Extract<ChildContext, { fields: unknown }>['fields'] = {};
  for (const [key, value] of Object.entries(ctx)) {
    fields[key] = typeof value === 'string' ? { path: valuePath(value, deps)! } : { value: structuredClone((value as { value: unknown }).value) };
  }
  return { fields };
}

/** The steps.wait record of a valid sleep, wait or workflow step (see WaitSpec). */
function waitSpec(s: Record<string, unknown>, namespace: string): WaitSpec {
  if (isPlainObject(s.workflow)) {
    const w = s.workflow;
    const context = childContext(w.context, (s.depends_on as string[] | undefined) ?? []);
    return {
      workflow: {
        namespace: typeof w.namespace === 'string' ? w.namespace : namespace,
        name: w.name as string,
        ...(typeof w.version === 'string' ? { version: w.version } : {}),
        ...(context ? { context } : {}),
      },
    };
  }
  if (typeof s.duration === 'string') return { ms: durationMs(s.duration)!, duration: s.duration };
  if (typeof s.until === 'string') {
    const [head, ...path] = s.until.split('.');
    return head === 'context' ? { until: s.until, from: 'context', path } : { until: s.until, from: 'step', step: head!, path };
  }
  const spec: WaitSpec = { on_timeout: isPlainObject(s.on_timeout) ? 'result' : 'fail' };
  if (typeof s.timeout === 'string') {
    spec.timeout = s.timeout;
    spec.timeout_ms = durationMs(s.timeout)!;
  }
  if (isPlainObject(s.on_timeout)) spec.result = structuredClone(s.on_timeout.result);
  if (isPlainObject(s.payload_schema)) spec.schema = structuredClone(s.payload_schema);
  return spec;
}

// ───────────────────────────── defaults ─────────────────────────────

function normalise(t: RawTemplate): TemplateDefinition {
  const runtime = (t.runtime as Runtime | undefined) ?? 'native';
  const steps = (t.steps as Record<string, unknown>[]).map((s): StepDefinition => {
    const type = (s.type as StepType | undefined) ?? 'standard';
    const step: StepDefinition = {
      name: s.name as string,
      handler: WAITING_STEP_TYPES.has(type) ? `weft.${type}` : (s.handler as string),
      runtime: (s.runtime as Runtime | undefined) ?? runtime,
      type,
      depends_on: [...((s.depends_on as string[] | undefined) ?? [])],
      inputs: structuredClone((s.inputs as Record<string, unknown> | undefined) ?? {}),
      retry: { ...DEFAULT_RETRY, ...((s.retry as Partial<RetryPolicy> | undefined) ?? {}) },
      timeout_ms: (s.timeout_ms as number | undefined) ?? DEFAULT_TIMEOUT_MS,
    };
    if (typeof s.description === 'string') step.description = s.description;
    if (s.batch !== undefined) step.batch = { ...DEFAULT_BATCH, ...(s.batch as BatchConfig) };
    if (WAITING_STEP_TYPES.has(type)) step.wait = waitSpec(s, t.namespace as string);
    return step;
  });
  const def: TemplateDefinition = {
    namespace: t.namespace as string,
    name: t.name as string,
    version: t.version as string,
    runtime,
    steps,
  };
  if (typeof t.description === 'string') def.description = t.description;
  if (t.input_schema !== undefined) def.input_schema = structuredClone(t.input_schema as Record<string, unknown>);
  if (Array.isArray(t.schedules) && t.schedules.length) def.schedules = structuredClone(t.schedules as TemplateSchedule[]);
  return def;
}

// ───────────────────────────── helpers ─────────────────────────────

function toProblems(findings: Finding[], view: SourceView | undefined): TemplateProblem[] {
  const problems = findings.map((f): TemplateProblem => {
    const pos = view?.position(f.at, f.atKey ?? false);
    return { path: formatPath(f.at), message: f.message, hint: f.hint, ...(pos ? { line: pos.line, column: pos.column } : {}) };
  });
  // Read top to bottom when positions are known (sort is stable otherwise).
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? Infinity) - (b.p.line ?? Infinity) || (a.p.column ?? 0) - (b.p.column ?? 0) || a.i - b.i)
    .map(({ p }) => p);
}

function yamlSourceView(doc: Document, lineCounter: LineCounter): SourceView {
  const find = (at: Segment[], atKey: boolean): { node: Node | undefined; offset: number | undefined; text?: string } => {
    let node: unknown = doc.contents;
    let offset = (doc.contents as Node | null)?.range?.[0];
    for (let i = 0; i < at.length; i++) {
      const seg = at[i];
      const last = i === at.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
        if (!pair) return { node: undefined, offset };
        const keyOffset = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
        if (last && atKey) return { node: pair.key as Node, offset: keyOffset ?? offset };
        node = pair.value;
        offset = (pair.value as Node | null)?.range?.[0] ?? keyOffset ?? offset;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
        if (node === undefined) return { node: undefined, offset };
        offset = (node as Node).range?.[0] ?? offset;
      } else {
        return { node: undefined, offset };
      }
    }
    return { node: node as Node, offset };
  };
  return {
    position(at, atKey) {
      const { offset } = find(at, atKey);
      if (offset === undefined) return undefined;
      const { line, col } = lineCounter.linePos(offset);
      return { line, column: col };
    },
    text(at) {
      const { node } = find(at, false);
      return isScalar(node) && typeof node.source === 'string' ? node.source : undefined;
    },
  };
}

/** `['steps', 2, 'depends_on', 0]` → `steps[2].depends_on[0]` */
export function formatPath(at: readonly Segment[]): string {
  let out = '';
  for (const s of at) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += out === '' ? s : `.${s}`;
  }
  return out;
}

function valueAt(root: unknown, at: Segment[]): unknown {
  let v: unknown = root;
  for (const s of at) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[s];
  }
  return v;
}

/** ` ("step_name")` for a path that is a step, to make messages easier to place. */
function stepLabel(root: unknown, at: Segment[]): string {
  if (at.length !== 2 || at[0] !== 'steps') return '';
  const step = valueAt(root, at);
  return isPlainObject(step) && typeof step.name === 'string' ? ` ("${step.name}")` : '';
}

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'empty';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `a string (${JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v)})`;
  if (typeof v === 'number') return Number.isInteger(v) ? `the number ${v}` : `the number ${v} (not a whole number)`;
  if (typeof v === 'boolean') return `${v}`;
  return typeof v;
}

/** The closest known name, when it is close enough to be a plausible typo. */
function suggest(word: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0) return undefined;
  const best = closest(word, candidates as string[]);
  // About one edit per three letters: catches typos, not unrelated words.
  const limit = Math.max(1, Math.floor(Math.max(word.length, best.length) / 3));
  const d = distance(word, best);
  return d <= limit && d < word.length ? best : undefined;
}

function suggestName(v: string): string {
  const s = v
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^[^a-z]+/, '')
    .replace(/_+$/, '');
  return s === '' ? 'my_name' : s;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function yamlMessage(message: string): string {
  // yaml's pretty messages end with " at line L, column C:" and a code excerpt.
  return (message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
}

function yamlHint(code: string): string {
  switch (code) {
    case 'DUPLICATE_KEY':
      return 'remove or rename one of the repeated keys';
    case 'TAB_AS_INDENT':
      return 'indent with spaces; YAML does not allow tabs';
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
      return 'check the indentation and that every [, { and quote is closed';
    case 'BLOCK_AS_IMPLICIT_KEY':
    case 'MULTILINE_IMPLICIT_KEY':
      return 'write one "key: value" per line; quote a value that contains ": "';
    case 'MULTIPLE_DOCS':
      return 'a template file holds one YAML document: remove the extra "---" or split the file';
    default:
      return 'fix the YAML at this position (indentation, brackets, quotes)';
  }
}
