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
  id: number;
  title: string;
  category: string;
  priceCents: number;
  ratingHundredths: number;
  stock: number;
}

function toHundredths(text: string, what: string): number {
  const m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(text.trim());
  if (!m) throw new Error(`${what} is not a decimal with at most 2 places: ${JSON.stringify(text)}`);
  return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
}

/** Parse the CSV (no quoted fields: the generator never writes commas inside a field). */
export function parseProducts(csv: string): Product[] {
  const [header, ...lines] = csv.split('\n').filter((l) => l.trim() !== '');
  const cols = (header ?? '').split(',');
  const at = (name: string) => {
    const i = cols.indexOf(name);
    if (i < 0) throw new Error(`CSV header has no column "${name}" (has: ${cols.join(', ')})`);
    return i;
  };
  const [iId, iTitle, iCat, iPrice, iRating, iStock] = ['id', 'title', 'category', 'price', 'rating', 'stock'].map(at) as number[];
  return lines.map((line, n) => {
    const f = line.split(',');
    return {
      id: Number(f[iId!]),
      title: f[iTitle!]!,
      category: f[iCat!]!,
      priceCents: toHundredths(f[iPrice!]!, `row ${n + 1} price`),
      ratingHundredths: toHundredths(f[iRating!]!, `row ${n + 1} rating`),
      stock: Number(f[iStock!]),
    };
  });
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
  const counts: Record<string, number> = {};
  for (const p of rows) {
    value += p.priceCents * p.stock;
    ratings += p.ratingHundredths;
    counts[p.category] = (counts[p.category] ?? 0) + 1;
    if (!max || p.priceCents > max.priceCents) max = p;
  }
  return finish(rows.length, value, counts, max ? max.priceCents : 0, max?.title ?? null, ratings);
}

function finish(n: number, value: number, counts: Record<string, number>, maxCents: number, maxTitle: string | null, ratings: number): BatchSummary {
  const sorted = Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
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

/** Merge batch summaries: sums, merged counts, the global maximum, the overall average. */
export function mergeSummaries(parts: BatchSummary[]): BatchSummary {
  const counts: Record<string, number> = {};
  let n = 0;
  let value = 0;
  let ratings = 0;
  let maxCents = 0;
  let maxTitle: string | null = null;
  for (const p of parts) {
    n += p.processed_count;
    value += p.total_inventory_value_cents;
    ratings += p.rating_sum_hundredths;
    for (const [c, k] of Object.entries(p.category_counts)) counts[c] = (counts[c] ?? 0) + k;
    const pc = Math.round(p.max_price * 100);
    if (p.max_price_product !== null && (maxTitle === null || pc > maxCents)) {
      maxCents = pc;
      maxTitle = p.max_price_product;
    }
  }
  return finish(n, value, counts, maxCents, maxTitle, ratings);
}
