"""CSV batch workflow (templates/languages/python/csv_batch.yaml):
analyze_csv -> process_csv_batch_001..N -> aggregate_csv_results.

Handler keys: csv.analyze, csv.process_batch, csv.aggregate. The same
handlers as handlers/typescript/csv.ts and handlers/ruby/csv_batch.rb, with
the same results and the same error messages.

context.csv_file_path names a file inside the examples data folder:
WEFT_EXAMPLES_DATA_DIR, by default handlers/data (which ships products.csv).
Anything that could reach another file is refused: an absolute path, a ".."
part, a symbolic link that leads out of the folder. Errors name the field and
the folder, never the file's text.

The CSV has a header naming at least title, category, price, rating and
stock; fields are split on "," with no quoting. analyze splits the rows into
at most inputs.max_workers cursors of about inputs.batch_size rows; each batch
sums price x stock in cents and ratings in hundredths (exact), counts products
per category and finds the most expensive; aggregate merges the batches.
"""
import errno
import math
import os
import re
import stat

import weft

_DEFAULT_DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "data")
_NEEDED = ("title", "category", "price", "rating", "stock")
_DECIMAL = re.compile(r"([0-9]{1,9})(?:\.([0-9]{1,2}))?")
_WHOLE = re.compile(r"[0-9]{1,9}")
_BLANK = re.compile(r"[ \t]*")
_MAX_EXACT = 2**53 - 1  # JavaScript's largest exact integer: the TypeScript example refuses sums past it


def _data_folder():
    return os.path.abspath(os.environ.get("WEFT_EXAMPLES_DATA_DIR") or _DEFAULT_DATA_DIR)


def _refuse(found, folder):
    raise weft.PermanentError(
        f"context.csv_file_path {found}; name a CSV file inside the examples data folder {folder}, "
        f'e.g. "products.csv" (WEFT_EXAMPLES_DATA_DIR sets the folder)'
    )


def _code(exc):
    return errno.errorcode.get(exc.errno, "unknown error")


def _read_csv(step):
    """The text of the file context.csv_file_path names, once it is known to lie inside the data folder."""
    folder = _data_folder()
    ctx = step.context if isinstance(step.context, dict) else {}
    if "csv_file_path" not in ctx:
        _refuse("is missing", folder)
    name = ctx["csv_file_path"]
    if not isinstance(name, str):
        _refuse("is not a string", folder)
    if name == "":
        _refuse("is empty", folder)
    if "\0" in name:
        _refuse("contains a NUL character", folder)
    if name.startswith("/"):
        _refuse("is an absolute path", folder)
    if ".." in name.split("/"):
        _refuse('has a ".." part', folder)
    try:
        root = os.path.realpath(folder, strict=True)
    except OSError as exc:
        raise weft.PermanentError(
            f"the examples data folder {folder} cannot be opened ({_code(exc)}); "
            "create it, or set WEFT_EXAMPLES_DATA_DIR to the folder that holds the CSV files"
        ) from None
    try:
        path = os.path.realpath(os.path.join(root, name), strict=True)
    except OSError as exc:
        code = _code(exc)
        _refuse("names no file in the folder" if code in ("ENOENT", "ENOTDIR") else f"cannot be opened ({code})", folder)
    if path != root and not path.startswith(root if root.endswith("/") else root + "/"):
        _refuse("leads out of the folder through a symbolic link", folder)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            _refuse("names a folder or a device, not a file", folder)
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        _refuse(f"cannot be read ({_code(exc)})", folder)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise weft.PermanentError("the CSV file is not UTF-8 text") from None


def _hundredths(text, line, column):
    m = _DECIMAL.fullmatch(text)
    if not m:
        raise weft.PermanentError(
            f"CSV line {line}: {column} must be a decimal such as 12.34 (at most 9 digits before the point and 2 after)"
        )
    return int(m.group(1)) * 100 + int((m.group(2) or "").ljust(2, "0"))


def _products(text):
    """Rows as (title, category, price_cents, rating_hundredths, stock), parsed as the TypeScript example does."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = []
    for i, line in enumerate(text.split("\n")):
        if line.endswith("\r"):
            line = line[:-1]
        if not _BLANK.fullmatch(line):
            lines.append((i + 1, line))
    header = lines[0] if lines else None
    cols = header[1].split(",") if header else []
    at = {}
    for name in _NEEDED:
        if name not in cols:
            raise weft.PermanentError(
                f'CSV header (line {header[0] if header else 1}) has no "{name}" column; '
                "it must name title, category, price, rating and stock"
            )
        at[name] = cols.index(name)
    rows = []
    for no, line in lines[1:]:
        f = line.split(",")
        if len(f) != len(cols):
            raise weft.PermanentError(f"CSV line {no} has {len(f)} fields, but the header has {len(cols)}")
        if not _WHOLE.fullmatch(f[at["stock"]]):
            raise weft.PermanentError(f"CSV line {no}: stock must be a whole number such as 42 (at most 9 digits)")
        rows.append(
            (
                f[at["title"]],
                f[at["category"]],
                _hundredths(f[at["price"]], no, "price"),
                _hundredths(f[at["rating"]], no, "rating"),
                int(f[at["stock"]]),
            )
        )
    return rows


def _exact_sum(a, b, what):
    if a + b > _MAX_EXACT:
        raise weft.PermanentError(f"the {what} passes {_MAX_EXACT}, more than this example sums exactly")
    return a + b


def _js_round(x):
    """JavaScript's Math.round for x >= 0 (halves go up; Python's round() goes to even)."""
    r = math.floor(x)
    return r + 1 if x - r >= 0.5 else r


def _number(x):
    """A float as JavaScript writes it in JSON: 349, not 349.0."""
    return int(x) if x == int(x) else x


def _summary(n, value, counts, max_cents, max_title, ratings):
    return {
        "processed_count": n,
        "total_inventory_value_cents": value,
        "total_inventory_value": f"{value // 100}.{value % 100:02d}",
        "category_counts": dict(sorted(counts.items())),
        "max_price": _number(max_cents / 100),
        "max_price_product": max_title,
        "rating_sum_hundredths": ratings,
        "average_rating": _number(_js_round(ratings / n * 100) / 10000) if n else 0,
    }


def _count(step, field, default):
    v = step.inputs.get(field)
    if v is None:
        v = default
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise weft.PermanentError(f"inputs.{field} must be a whole number of at least 1")
    return v


def _index(v):
    return v if isinstance(v, int) and not isinstance(v, bool) else None


@weft.step_handler("csv.analyze")
def analyze(step):
    batch_size = _count(step, "batch_size", 200)
    max_workers = _count(step, "max_workers", 5)
    n = len(_products(_read_csv(step)))
    if n == 0:
        return weft.batches([])
    workers = min(-(-n // batch_size), max_workers)
    per = -(-n // workers)
    return weft.batches([{"start_row": i * per, "end_row": min((i + 1) * per, n)} for i in range(workers)])


@weft.step_handler("csv.process_batch")
def process_batch(step):
    cursor = (step.batch or {}).get("cursor")
    cursor = cursor if isinstance(cursor, dict) else {}
    start, end = _index(cursor.get("start_row")), _index(cursor.get("end_row"))
    if start is None or end is None or start < 0 or end < start:
        raise weft.PermanentError(
            'batch.cursor must be {"start_row": a, "end_row": b} with 0 <= a <= b, as csv.analyze returns'
        )
    rows = _products(_read_csv(step))
    if end > len(rows):
        raise weft.PermanentError(
            f"the CSV file has {len(rows)} rows, fewer than this batch's end_row {end}: it changed after analyze_csv read it"
        )
    value = ratings = 0
    counts = {}
    top = None
    for title, category, price, rating, stock in rows[start:end]:
        value = _exact_sum(value, price * stock, "inventory value in cents")
        ratings = _exact_sum(ratings, rating, "sum of ratings in hundredths")
        counts[category] = counts.get(category, 0) + 1
        if top is None or price > top[1]:
            top = (title, price)
    return _summary(end - start, value, counts, top[1] if top else 0, top[0] if top else None, ratings)


@weft.step_handler("csv.aggregate")
def aggregate(step):
    # Every parent is a batch worker; the no-op placeholder of an empty file has nothing to add.
    n = value = ratings = max_cents = 0
    counts = {}
    max_title = None
    for name, r in sorted(step.dependency_results.items()):
        if isinstance(r, dict) and r.get("no_op"):
            continue
        count = r.get("processed_count") if isinstance(r, dict) else None
        if isinstance(count, bool) or not isinstance(count, (int, float)):
            raise weft.PermanentError(f"dependency_results.{name} is not a batch summary of csv.process_batch")
        n += count
        value = _exact_sum(value, r["total_inventory_value_cents"], "inventory value in cents")
        ratings = _exact_sum(ratings, r["rating_sum_hundredths"], "sum of ratings in hundredths")
        for c, k in r["category_counts"].items():
            counts[c] = counts.get(c, 0) + k
        cents = _js_round(r["max_price"] * 100)
        if r["max_price_product"] is not None and (max_title is None or cents > max_cents):
            max_cents, max_title = cents, r["max_price_product"]
    return _summary(n, value, counts, max_cents, max_title, ratings)
