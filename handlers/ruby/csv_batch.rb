# frozen_string_literal: true

# CSV batch workflow (templates/e2e_csv*): analyze -> process_batch x N -> aggregate.
#
# Handler keys: csv.analyze, csv.process_batch, csv.aggregate.
#
# context: csv_path (a file, relative to the worker's working directory) or
# csv_text (the CSV itself), and batch_size (rows per batch, default 100). The
# CSV has a header row with at least: name, category, price, stock, rating.
# analyze returns Weft.batches over row ranges {"start", "end"}; each batch
# computes inventory value (price x stock, in cents so it is exact), products
# per category, the most expensive product and the rating sum; aggregate
# merges them and computes the average rating.
require 'csv'

module CsvBatch
  module_function

  def rows(step)
    ctx = step.context
    text = if ctx.key?('csv_text') then ctx['csv_text']
           elsif ctx.key?('csv_path') then File.read(ctx['csv_path'], encoding: 'UTF-8')
           else raise Weft::PermanentError, 'context needs csv_path or csv_text'
           end
    CSV.parse(text, headers: true).map(&:to_h)
  end

  def cents(price)
    whole, frac = price.to_s.strip.split('.', 2)
    sign = whole.start_with?('-') ? -1 : 1
    sign * ((whole.to_i.abs * 100) + "#{frac}00"[0, 2].to_i)
  end

  def batch_results(step)
    step.dependency_results.values.flat_map { |v| v.is_a?(Array) ? v : [v] }
        .select { |r| r.is_a?(Hash) && r.key?('inventory_value_cents') }
  end
end

Weft.handler('csv.analyze') do |step|
  n = CsvBatch.rows(step).size
  size = Integer(step.context.fetch('batch_size', 100))
  raise Weft::PermanentError, "context.batch_size must be at least 1, got #{size}" if size < 1

  Weft.batches((0...n).step(size).map { |s| { 'start' => s, 'end' => [s + size, n].min } })
end

Weft.handler('csv.process_batch') do |step|
  batch = step.batch || {}
  rows = if batch['no_op'] || batch['cursor'].nil? then []
         else CsvBatch.rows(step)[batch['cursor']['start']...batch['cursor']['end']]
         end
  value_cents = 0
  categories = {}
  top = nil
  rating_sum = 0.0
  rows.each do |r|
    price = CsvBatch.cents(r['price'])
    value_cents += price * Integer(r['stock'], 10)
    categories[r['category']] = categories.fetch(r['category'], 0) + 1
    top = { 'name' => r['name'], 'price_cents' => price } if top.nil? || price > top['price_cents']
    rating_sum += Float(r['rating'])
  end
  {
    'rows' => rows.size,
    'inventory_value_cents' => value_cents,
    'category_counts' => categories,
    'most_expensive' => top,
    'rating_sum' => rating_sum
  }
end

Weft.handler('csv.aggregate') do |step|
  results = CsvBatch.batch_results(step)
  rows = results.sum { |r| r['rows'] }
  cents = results.sum { |r| r['inventory_value_cents'] }
  categories = Hash.new(0)
  top = nil
  rating_sum = 0.0
  results.each do |r|
    r['category_counts'].each { |c, n| categories[c] += n }
    m = r['most_expensive']
    top = m if m && (top.nil? || m['price_cents'] > top['price_cents'])
    rating_sum += r['rating_sum']
  end
  {
    'total_products' => rows,
    'total_inventory_value' => cents / 100.0,
    'category_counts' => categories.sort.to_h,
    'most_expensive_product' => top && top['name'],
    'most_expensive_price' => top && (top['price_cents'] / 100.0),
    'average_rating' => rows.positive? ? (rating_sum / rows).round(2) : nil
  }
end
