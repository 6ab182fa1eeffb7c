import { createHash } from 'node:crypto';
import type { Database } from './database.js';
import type { TemplateDefinition } from '../core/template/types.js';
import { templateKey } from '../core/template/types.js';
import { ConflictError } from '../shared/errors.js';
import type { TemplateSummary } from '../core/api-types.js';

/** A stable digest of a definition, so re-registering the same template is a no-op. */
export function definitionDigest(def: TemplateDefinition): string {
  return createHash('sha256').update(stableJson(def)).digest('hex').slice(0, 32);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export type RegisterOutcome = 'created' | 'unchanged';

/**
 * Store a validated template. A version is immutable: registering the same
 * namespace/name/version with a different definition is a ConflictError
 * that tells the author to bump the version.
 */
export async function registerTemplate(db: Database, def: TemplateDefinition): Promise<RegisterOutcome> {
  const digest = definitionDigest(def);
  const { rows } = await db.query<{ digest: string; inserted: boolean }>(
    `WITH ins AS (
       INSERT INTO weft.templates (namespace, name, version, definition, digest)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (namespace, name, version) DO NOTHING
       RETURNING digest)
     SELECT digest, true AS inserted FROM ins
     UNION ALL
     SELECT digest, false FROM weft.templates WHERE namespace = $1 AND name = $2 AND version = $3
     LIMIT 1`,
    [def.namespace, def.name, def.version, JSON.stringify(def), digest],
  );
  // Two processes registering the same new template at once: the loser's
  // ON CONFLICT waits for the winner, but its SELECT ran on a snapshot from
  // before the winner committed and found nothing. Read again.
  const row =
    rows[0] ??
    (
      await db.query<{ digest: string; inserted: boolean }>(
        'SELECT digest, false AS inserted FROM weft.templates WHERE namespace = $1 AND name = $2 AND version = $3',
        [def.namespace, def.name, def.version],
      )
    ).rows[0]!;
  if (row.inserted) return 'created';
  if (row.digest !== digest) {
    throw new ConflictError(
      `template ${templateKey(def)} is already registered with a different definition; ` +
        'a version is immutable once registered: bump `version` (e.g. 1.0.1) to change it',
    );
  }
  return 'unchanged';
}

export async function getTemplate(db: Database, namespace: string, name: string, version?: string): Promise<TemplateDefinition | undefined> {
  if (version) {
    const { rows } = await db.query<{ definition: TemplateDefinition }>(
      'SELECT definition FROM weft.templates WHERE namespace = $1 AND name = $2 AND version = $3',
      [namespace, name, version],
    );
    return rows[0]?.definition;
  }
  // Without a version, the highest semver wins (compared numerically part by part).
  const { rows } = await db.query<{ definition: TemplateDefinition }>(
    `SELECT definition FROM weft.templates WHERE namespace = $1 AND name = $2
     ORDER BY string_to_array(split_part(version, '-', 1), '.')::int[] DESC, version DESC LIMIT 1`,
    [namespace, name],
  );
  return rows[0]?.definition;
}

export type { TemplateSummary } from '../core/api-types.js';

/** Every registered template with a `workflow` step (the ones that can call another). */
export async function callingTemplates(db: Database): Promise<TemplateDefinition[]> {
  const { rows } = await db.query<{ definition: TemplateDefinition }>(
    `SELECT definition FROM weft.templates WHERE definition @? '$.steps[*] ? (@.type == "workflow")'`,
  );
  return rows.map((r) => r.definition);
}

export async function listTemplates(db: Database): Promise<TemplateSummary[]> {
  const { rows } = await db.query<{ definition: TemplateDefinition; registered_at: Date }>(
    'SELECT definition, registered_at FROM weft.templates ORDER BY namespace, name, version',
  );
  return rows.map(({ definition: d, registered_at }) => ({
    namespace: d.namespace,
    name: d.name,
    version: d.version,
    description: d.description,
    steps: d.steps.length,
    runtimes: [...new Set(d.steps.map((s) => s.runtime))].sort(),
    registered_at,
  }));
}

/** Namespaces that have at least one step of the given runtime: what a worker of that runtime serves by default. */
export async function namespacesForRuntime(db: Database, runtime: string): Promise<string[]> {
  const { rows } = await db.query<{ namespace: string }>(
    `SELECT DISTINCT namespace FROM weft.templates t, jsonb_array_elements(t.definition->'steps') s
     WHERE s->>'runtime' = $1 ORDER BY namespace`,
    [runtime],
  );
  return rows.map((r) => r.namespace);
}

/**
 * Template versions by exact key, cached forever: a registered version never
 * changes, so a worker reads each one once (for retry policies and decision
 * and batch expansions).
 */
export class TemplateVersions {
  private readonly cache = new Map<string, Promise<TemplateDefinition>>();

  constructor(private readonly db: Database) {}

  get(namespace: string, name: string, version: string): Promise<TemplateDefinition> {
    const key = `${namespace}/${name}@${version}`;
    let hit = this.cache.get(key);
    if (!hit) {
      hit = getTemplate(this.db, namespace, name, version).then((def) => {
        if (!def) throw new Error(`template ${key} is not registered, but a task of it is running`);
        return def;
      });
      hit.catch(() => this.cache.delete(key));
      this.cache.set(key, hit);
    }
    return hit;
  }
}

/** Every (namespace, runtime) pair some registered template has a step for: the step queues that can hold messages. */
export async function namespaceRuntimes(db: Database): Promise<Array<{ namespace: string; runtime: string }>> {
  const { rows } = await db.query<{ namespace: string; runtime: string }>(
    `SELECT DISTINCT t.namespace, s->>'runtime' AS runtime FROM weft.templates t, jsonb_array_elements(t.definition->'steps') s ORDER BY 1, 2`,
  );
  return rows;
}
