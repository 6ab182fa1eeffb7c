/**
 * How deep a YAML text nests, estimated by one linear scan without parsing
 * it, so that a hostile template (200,000 `[` or `- ` in a row) is refused
 * before the YAML parser spends seconds on it or overflows its stack, as JSON
 * bodies are (json-body.ts).
 *
 * The estimate counts block levels by indentation (each deeper indentation
 * of a line opens one), `- ` and `? ` indicators at the start of a node (a
 * compact `- - - x` nests on one line), and flow collections (`[`, `{`)
 * outside quoted strings, comments and block scalars (`|`, `>`). For the
 * usual shapes it is the real depth give or take one; it never misses
 * nesting written on one line. The exact depth is checked on the parsed value.
 *
 * @example
 *   yamlTextDepth('a:\n  b: [1, [2]]\n') // 4
 */
export function yamlTextDepth(text: string, stopAbove = Number.POSITIVE_INFINITY): { depth: number; line: number } {
  const lines = text.split(/\r?\n/);
  const indents: number[] = [];
  let flow = 0;
  let quote: '"' | "'" | undefined;
  let blockScalarParent = -1; // indentation of the line that opened a block scalar, while inside it
  let deepest = { depth: 0, line: 0 };
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    let i = 0;
    while (i < line.length && line.charCodeAt(i) === 0x20) i++;
    const blank = i === line.length || line[i] === '#';
    if (blockScalarParent >= 0) {
      if (blank || i > blockScalarParent) continue;
      blockScalarParent = -1;
    }
    if (blank && quote === undefined) continue;
    if (quote === undefined && flow === 0) {
      while (indents.length > 0 && indents[indents.length - 1]! >= i) indents.pop();
      indents.push(i);
    }
    let onLine = 0;
    let atNode = quote === undefined; // a node (scalar, collection, indicator) may start here
    for (; i < line.length; i++) {
      const c = line[i]!;
      if (quote === '"') {
        if (c === '\\') i++;
        else if (c === '"') quote = undefined;
        continue;
      }
      if (quote === "'") {
        if (c === "'" && line[i + 1] === "'") i++;
        else if (c === "'") quote = undefined;
        continue;
      }
      const next = line[i + 1];
      const spaceAfter = next === undefined || next === ' ' || next === '\t';
      if (c === ' ' || c === '\t') continue;
      if (c === '#' && (i === 0 || line[i - 1] === ' ' || line[i - 1] === '\t')) break;
      if (atNode && (c === '-' || c === '?') && spaceAfter && flow === 0) {
        onLine++;
      } else if ((atNode || flow > 0) && (c === '[' || c === '{')) {
        flow++;
        atNode = true;
      } else if (flow > 0 && (c === ']' || c === '}')) {
        flow--;
        atNode = false;
      } else if (flow > 0 && c === ',') {
        atNode = true;
      } else if (c === ':' && (spaceAfter || flow > 0)) {
        atNode = true;
      } else if (atNode && (c === '"' || c === "'")) {
        quote = c;
        atNode = false;
      } else if (atNode && flow === 0 && (c === '|' || c === '>')) {
        blockScalarParent = indents[indents.length - 1] ?? 0;
        break;
      } else if (atNode && (c === '&' || c === '!')) {
        while (i + 1 < line.length && line[i + 1] !== ' ') i++; // an anchor or a tag: the node follows it
      } else {
        atNode = false;
      }
      const depth = indents.length + onLine + flow;
      if (depth > deepest.depth) deepest = { depth, line: n + 1 };
      if (deepest.depth > stopAbove) return deepest;
    }
    const depth = indents.length + onLine + flow;
    if (depth > deepest.depth) deepest = { depth, line: n + 1 };
    if (deepest.depth > stopAbove) return deepest;
  }
  return deepest;
}
