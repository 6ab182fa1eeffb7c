import type { Database } from './database.js';
import type { TemplateDefinition } from '../core/template/types.js';

export interface TemplateVersion {
  version: string;
  digest: string;
  registered_at: Date;
  definition: TemplateDefinition;
}

/** Every registered version of one template, newest (highest semver) first. */
export async function templateVersions(db: Database, namespace: string, name: string): Promise<TemplateVersion[]> {
  const { rows } = await db.query<TemplateVersion>(
    `SELECT version, digest, registered_at, definition FROM weft.templates WHERE namespace = $1 AND name = $2
     ORDER BY string_to_array(split_part(version, '-', 1), '.')::int[] DESC, version DESC`,
    [namespace, name],
  );
  return rows;
}
