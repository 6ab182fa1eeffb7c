"""CSV batch workflow (templates/e2e_csv*): analyze -> process_batch x N -> aggregate.

Handler keys: csv.analyze, csv.process_batch, csv.aggregate.

context: csv_path (a file, relative to the worker's working directory) or
csv_text (the CSV itself), and batch_size (rows per batch, default 100). The
CSV has a header row with at least: name, category, price, stock, rating.
analyze returns weft.batches over row ranges {"start", "end"}; each batch
computes inventory value (price x stock, in cents so it is exact), products
per category, the most expensive product and the rating sum; aggregate merges
them and computes the average rating.
"""
import csv
import io

import weft


def _rows(step):
    ctx = step.context
    if "csv_text" in ctx:
        text = ctx["csv_text"]
    elif "csv_path" in ctx:
        with open(ctx["csv_path"], newline="", encoding="utf-8") as f:
            text = f.read()
    else:
        raise weft.PermanentError("context needs csv_path or csv_text")
    return list(csv.DictReader(io.StringIO(text)))


def _cents(price):
    whole, _, frac = str(price).strip().partition(".")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole or "0")) * 100 + int((frac + "00")[:2]))


@weft.step_handler("csv.analyze")
def analyze(step):
    n = len(_rows(step))
    size = int(step.context.get("batch_size", 100))
    if size < 1:
        raise weft.PermanentError(f"context.batch_size must be at least 1, got {size}")
    return weft.batches([{"start": s, "end": min(s + size, n)} for s in range(0, n, size)])


@weft.step_handler("csv.process_batch")
def process_batch(step):
    batch = step.batch or {}
    if batch.get("no_op") or batch.get("cursor") is None:
        rows = []
    else:
        cursor = batch["cursor"]
        rows = _rows(step)[cursor["start"]:cursor["end"]]
    value_cents = 0
    categories = {}
    top = None
    rating_sum = 0.0
    for r in rows:
        price = _cents(r["price"])
        value_cents += price * int(r["stock"])
        categories[r["category"]] = categories.get(r["category"], 0) + 1
        if top is None or price > top["price_cents"]:
            top = {"name": r["name"], "price_cents": price}
        rating_sum += float(r["rating"])
    return {
        "rows": len(rows),
        "inventory_value_cents": value_cents,
        "category_counts": categories,
        "most_expensive": top,
        "rating_sum": rating_sum,
    }


def _batch_results(step):
    out = []
    for v in step.dependency_results.values():
        for item in v if isinstance(v, list) else [v]:
            if isinstance(item, dict) and "inventory_value_cents" in item:
                out.append(item)
    return out


@weft.step_handler("csv.aggregate")
def aggregate(step):
    results = _batch_results(step)
    rows = sum(r["rows"] for r in results)
    cents = sum(r["inventory_value_cents"] for r in results)
    categories = {}
    top = None
    rating_sum = 0.0
    for r in results:
        for c, n in r["category_counts"].items():
            categories[c] = categories.get(c, 0) + n
        m = r["most_expensive"]
        if m and (top is None or m["price_cents"] > top["price_cents"]):
            top = m
        rating_sum += r["rating_sum"]
    return {
        "total_products": rows,
        "total_inventory_value": cents / 100,
        "category_counts": dict(sorted(categories.items())),
        "most_expensive_product": top["name"] if top else None,
        "most_expensive_price": top["price_cents"] / 100 if top else None,
        "average_rating": round(rating_sum / rows, 2) if rows else None,
    }
