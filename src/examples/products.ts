/**
 * The products CSV of the seed's batch workflow, generated deterministically
 * (same bytes on every machine), and the arithmetic its handlers do. Prices
 * and ratings are summed as integers (cents, hundredths) so that totals are
 * exact in every language.
 */

export const PRODUCT_COLUMNS = ['id', 'title', 'description', 'category', 'price', 'discountPercentage', 'rating', 'stock', 'brand', 'sku', 'weight'] as const;

const CATEGORIES = [
  'beauty',
  'fragrances',
  'furniture',
  'groceries',
  'home-decoration',
  'kitchen-accessories',
  'laptops',
  'mens-shirts',
  'mens-shoes',
  'mens-watches',
  'mobile-accessories',
];
const ADJECTIVES = ['Classic', 'Deluxe', 'Essential', 'Premium', 'Compact', 'Vintage', 'Modern', 'Rugged'];
const NOUNS = ['Kit', 'Set', 'Edition', 'Pack', 'Model', 'Series'];
const BRANDS = ['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Stark'];

/** A small seeded PRNG (mulberry32): deterministic across platforms. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function generateProductsCsv(rows = 1000, seed = 20260123): string {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const lines = [PRODUCT_COLUMNS.join(',')];
  for (let id = 1; id <= rows; id++) {
    const category = pick(CATEGORIES);
    const priceCents = 99 + Math.floor(rand() * 1_499_900);
    const rating = 100 + Math.floor(rand() * 401); // 1.00 .. 5.00
    const stock = Math.floor(rand() * 150);
    const title = `${pick(ADJECTIVES)} ${category.replace(/-/g, ' ')} ${pick(NOUNS)} ${id}`;
    lines.push(
      [
        id,
        title,
        `A ${title.toLowerCase()} for everyday use`,
        category,
        (priceCents / 100).toFixed(2),
        (Math.floor(rand() * 2000) / 100).toFixed(2),
        (rating / 100).toFixed(2),
        stock,
        pick(BRANDS),
        `SKU-${String(id).padStart(5, '0')}`,
        1 + Math.floor(rand() * 9),
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

export interface Product {
  title: string;
  category: string;
  priceCents: number;
  ratingHundredths: number;
  stock: number;
}

/** The columns the CSV examples read, in the order their error message names them. */
const NEEDED = ['title', 'category', 'price', 'rating', 'stock'] as const;
const DECIMAL = /^(\d{1,9})(?:\.(\d{1,2}))?$/;
const WHOLE = /^\d{1,9}$/;

/** A CSV the examples cannot read: the message names the line and column, never the file's text. */
export class ProductsCsvError extends Error {
  override name = 'ProductsCsvError';
}

/**
 * Parse the products CSV the way the Python and Ruby examples do
 * (handlers/python/csv_batch.py, handlers/ruby/csv_batch.rb), so that the
 * three give the same results and the same errors: lines split on "\n" (a
 * trailing "\r" dropped, lines of only spaces and tabs skipped), fields on
 * "," with no quoting (the generator never writes a comma inside a field),
 * a leading byte-order mark ignored, numbers checked exactly.
 */
export function parseProducts(csv: string): Product[] {
  const lines = csv
    .replace(/^\ufeff/, '')
    .split('\n')
    .map((text, i) => ({ no: i + 1, text: text.endsWith('\r') ? text.slice(0, -1) : text }))
    .filter((l) => !/^[ \t]*$/.test(l.text));
  const [header, ...rows] = lines;
  const cols = header ? header.text.split(',') : [];
  const at = Object.fromEntries(
    NEEDED.map((name) => {
      const i = cols.indexOf(name);
      if (i < 0)
        throw new ProductsCsvError(`CSV header (line ${header?.no ?? 1}) has no "${name}" column; it must name ${NEEDED.slice(0, -1).join(', ')} and stock`);
      return [name, i];
    }),
  ) as Record<(typeof NEEDED)[number], number>;
  return rows.map(({ no, text }) => {
    const f = text.split(',');
    if (f.length !== cols.length) throw new ProductsCsvError(`CSV line ${no} has ${f.length} fields, but the header has ${cols.length}`);
    if (!WHOLE.test(f[at.stock]!)) throw new ProductsCsvError(`CSV line ${no}: stock must be a whole number such as 42 (at most 9 digits)`);
    return {
      title: f[at.title]!,
      category: f[at.category]!,
      priceCents: hundredths(f[at.price]!, no, 'price'),
      ratingHundredths: hundredths(f[at.rating]!, no, 'rating'),
      stock: Number(f[at.stock]),
    };
  });
}

function hundredths(text: string, line: number, column: string): number {
  const m = DECIMAL.exec(text);
  if (!m) throw new ProductsCsvError(`CSV line ${line}: ${column} must be a decimal such as 12.34 (at most 9 digits before the point and 2 after)`);
  return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
}

/** a + b, refused once it passes 2^53 - 1: beyond that JavaScript numbers are not exact and the three examples would differ. */
function exactSum(a: number, b: number, what: string): number {
  const sum = a + b;
  if (sum > Number.MAX_SAFE_INTEGER) throw new ProductsCsvError(`the ${what} passes ${Number.MAX_SAFE_INTEGER}, more than this example sums exactly`);
  return sum;
}

export interface BatchSummary {
  processed_count: number;
  /** Σ price × stock, in cents (exact). */
  total_inventory_value_cents: number;
  /** The same as a decimal string, e.g. "12345.67". */
  total_inventory_value: string;
  category_counts: Record<string, number>;
  max_price: number;
  max_price_product: string | null;
  /** Σ rating, in hundredths (exact). */
  rating_sum_hundredths: number;
  average_rating: number;
}

const cents = (c: number) => `${Math.floor(c / 100)}.${String(c % 100).padStart(2, '0')}`;

export function summarise(rows: Product[]): BatchSummary {
  let value = 0;
  let ratings = 0;
  let max: Product | undefined;
  const counts = new Map<string, number>();
  for (const p of rows) {
    value = exactSum(value, p.priceCents * p.stock, 'inventory value in cents');
    ratings = exactSum(ratings, p.ratingHundredths, 'sum of ratings in hundredths');
    counts.set(p.category, (counts.get(p.category) ?? 0) + 1);
    if (!max || p.priceCents > max.priceCents) max = p;
  }
  return finish(rows.length, value, counts, max ? max.priceCents : 0, max?.title ?? null, ratings);
}

function finish(n: number, value: number, counts: Map<string, number>, maxCents: number, maxTitle: string | null, ratings: number): BatchSummary {
  // Code-unit order, as Python and Ruby sort (localeCompare would depend on the machine's locale).
  const sorted = Object.fromEntries([...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    processed_count: n,
    total_inventory_value_cents: value,
    total_inventory_value: cents(value),
    category_counts: sorted,
    max_price: maxCents / 100,
    max_price_product: maxTitle,
    rating_sum_hundredths: ratings,
    average_rating: n ? Math.round((ratings / n) * 100) / 10000 : 0,
  };
}

/** Merge batch summaries: sums, merged counts, the global maximum (the first batch's on a tie), the overall average. */
export function mergeSummaries(parts: BatchSummary[]): BatchSummary {
  const counts = new Map<string, number>();
  let n = 0;
  let value = 0;
  let ratings = 0;
  let maxCents = 0;
  let maxTitle: string | null = null;
  for (const p of parts) {
    n += p.processed_count;
    value = exactSum(value, p.total_inventory_value_cents, 'inventory value in cents');
    ratings = exactSum(ratings, p.rating_sum_hundredths, 'sum of ratings in hundredths');
    for (const [c, k] of Object.entries(p.category_counts)) counts.set(c, (counts.get(c) ?? 0) + k);
    const pc = Math.round(p.max_price * 100);
    if (p.max_price_product !== null && (maxTitle === null || pc > maxCents)) {
      maxCents = pc;
      maxTitle = p.max_price_product;
    }
  }
  return finish(n, value, counts, maxCents, maxTitle, ratings);
}
