import type { Database } from '../store/database.js';
import { callingTemplates, getTemplate, listTemplates, registerTemplate, type RegisterOutcome } from '../store/templates.js';
import { findCallCycle, templateCalls } from '../core/template/calls.js';
import type { TemplateDefinition } from '../core/template/types.js';
import { templateKey } from '../core/template/types.js';
import { compileInputSchema, type InputCheck } from '../core/template/input-schema.js';
import { NotFoundError, ValidationError } from '../shared/errors.js';

/** A version registered by another process is used for unversioned requests within this long. */
const LATEST_TTL_MS = 2_000;

interface Entry {
  def: TemplateDefinition;
  checkInput: (context: unknown) => InputCheck;
}

/**
 * Templates as orchestration uses them: read from PostgreSQL (the only
 * source of truth) and cached, since a registered version never changes.
 */
export class TemplateCatalog {
  private readonly byKey = new Map<string, Entry>();
  /** "Latest version of namespace/name", remembered briefly to spare a query per task. */
  private readonly latest = new Map<string, { entry: Entry; until: number }>();

  constructor(private readonly db: Database) {}

  async register(def: TemplateDefinition): Promise<RegisterOutcome> {
    await this.refuseCallCycle(def);
    const outcome = await registerTemplate(this.db, def);
    this.remember(def);
    this.latest.delete(`${def.namespace}/${def.name}`);
    return outcome;
  }

  /**
   * ValidationError when `def` would close a cycle of templates running each
   * other as child workflows, with the templates already registered. (Two
   * processes registering the two halves of a cycle at the same moment could
   * both pass: the depth limit on children stops what that builds.)
   */
  private async refuseCallCycle(def: TemplateDefinition): Promise<void> {
    // Every template on a cycle calls the next: one that calls nothing closes none.
    if (!templateCalls(def).length) return;
    const others = (await callingTemplates(this.db)).filter((d) => templateKey(d) !== templateKey(def));
    const cycle = findCallCycle([def, ...others]);
    if (cycle) {
      throw new ValidationError(
        `template ${templateKey(def)} would run itself through child workflows, so a task would start children forever: ${cycle}; ` +
          'make one of these workflow steps run another template, or pin a version that does not call back',
        'steps',
      );
    }
  }

  private remember(def: TemplateDefinition): Entry {
    const entry = { def, checkInput: compileInputSchema(def) };
    this.byKey.set(templateKey(def), entry);
    return entry;
  }

  /** The template, or NotFoundError naming what exists in that namespace. */
  async get(namespace: string, name: string, version?: string): Promise<Entry> {
    if (version) {
      const hit = this.byKey.get(`${namespace}/${name}@${version}`);
      if (hit) return hit;
    }
    const latestKey = `${namespace}/${name}`;
    if (!version) {
      const hit = this.latest.get(latestKey);
      if (hit && hit.until > Date.now()) return hit.entry;
    }
    const def = await getTemplate(this.db, namespace, name, version);
    if (def) {
      const entry = this.byKey.get(templateKey(def)) ?? this.remember(def);
      if (!version) this.latest.set(latestKey, { entry, until: Date.now() + LATEST_TTL_MS });
      return entry;
    }
    const known = (await listTemplates(this.db)).filter((t) => t.namespace === namespace);
    const what = version ? `${namespace}/${name}@${version}` : `${namespace}/${name}`;
    throw new NotFoundError(
      `no template ${what} is registered` +
        (known.length
          ? `; namespace ${namespace} has: ${known.map((t) => `${t.name}@${t.version}`).join(', ')}`
          : `; register it with POST /v1/templates or start the orchestrator with --templates DIR`),
    );
  }
}
