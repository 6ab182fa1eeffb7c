import type { Database } from '../store/database.js';
import { getTemplate, listTemplates, registerTemplate, type RegisterOutcome } from '../store/templates.js';
import type { TemplateDefinition } from '../core/template/types.js';
import { templateKey } from '../core/template/types.js';
import { compileInputSchema, type InputCheck } from '../core/template/input-schema.js';
import { NotFoundError } from '../shared/errors.js';

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

  constructor(private readonly db: Database) {}

  async register(def: TemplateDefinition): Promise<RegisterOutcome> {
    const outcome = await registerTemplate(this.db, def);
    this.remember(def);
    return outcome;
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
    const def = await getTemplate(this.db, namespace, name, version);
    if (def) return this.byKey.get(templateKey(def)) ?? this.remember(def);
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
