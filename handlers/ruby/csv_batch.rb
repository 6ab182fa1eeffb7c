# frozen_string_literal: true

# CSV batch workflow (templates/languages/ruby/csv_batch.yaml):
# analyze_csv -> process_csv_batch_001..N -> aggregate_csv_results.
#
# Handler keys: csv.analyze, csv.process_batch, csv.aggregate. The same
# handlers as handlers/typescript/csv.ts and handlers/python/csv_batch.py,
# with the same results and the same error messages.
#
# context.csv_file_path names a file inside the examples data folder:
# WEFT_EXAMPLES_DATA_DIR, by default handlers/data (which ships products.csv).
# Anything that could reach another file is refused: an absolute path, a ".."
# part, a symbolic link that leads out of the folder. Errors name the field
# and the folder, never the file's text.
#
# The CSV has a header naming at least title, category, price, rating and
# stock; fields are split on "," with no quoting. analyze splits the rows
# into at most inputs.max_workers cursors of about inputs.batch_size rows;
# each batch sums price x stock in cents and ratings in hundredths (exact),
# counts products per category and finds the most expensive; aggregate
# merges the batches.
module CsvBatch
  DEFAULT_DATA_DIR = File.absolute_path('../data', __dir__)
  NEEDED = %w[title category price rating stock].freeze
  DECIMAL = /\A([0-9]{1,9})(?:\.([0-9]{1,2}))?\z/
  WHOLE = /\A[0-9]{1,9}\z/
  BLANK = /\A[ \t]*\z/
  # JavaScript's largest exact integer: the TypeScript example refuses sums past it.
  MAX_EXACT = (2**53) - 1

  module_function

  def data_folder
    dir = ENV.fetch('WEFT_EXAMPLES_DATA_DIR', '')
    File.absolute_path(dir.empty? ? DEFAULT_DATA_DIR : dir)
  end

  def refuse(found, folder)
    raise Weft::PermanentError,
          "context.csv_file_path #{found}; name a CSV file inside the examples data folder #{folder}, " \
          'e.g. "products.csv" (WEFT_EXAMPLES_DATA_DIR sets the folder)'
  end

  def code(error)
    error.class.name.split('::').last
  end

  # The text of the file context.csv_file_path names, once it is known to lie inside the data folder.
  def read_csv(step)
    folder = data_folder
    ctx = step.context.is_a?(Hash) ? step.context : {}
    refuse('is missing', folder) unless ctx.key?('csv_file_path')
    name = ctx['csv_file_path']
    refuse('is not a string', folder) unless name.is_a?(String)
    refuse('is empty', folder) if name.empty?
    refuse('contains a NUL character', folder) if name.include?("\0")
    refuse('is an absolute path', folder) if name.start_with?('/')
    refuse('has a ".." part', folder) if name.split('/').include?('..')
    begin
      root = File.realpath(folder)
    rescue SystemCallError => e
      raise Weft::PermanentError,
            "the examples data folder #{folder} cannot be opened (#{code(e)}); " \
            'create it, or set WEFT_EXAMPLES_DATA_DIR to the folder that holds the CSV files'
    end
    begin
      path = File.realpath(File.join(root, name))
    rescue SystemCallError => e
      c = code(e)
      refuse(%w[ENOENT ENOTDIR].include?(c) ? 'names no file in the folder' : "cannot be opened (#{c})", folder)
    end
    unless path == root || path.start_with?(root.end_with?('/') ? root : "#{root}/")
      refuse('leads out of the folder through a symbolic link', folder)
    end
    begin
      refuse('names a folder or a device, not a file', folder) unless File.stat(path).file?
      data = File.binread(path)
    rescue SystemCallError => e
      refuse("cannot be read (#{code(e)})", folder)
    end
    text = data.force_encoding(Encoding::UTF_8)
    raise Weft::PermanentError, 'the CSV file is not UTF-8 text' unless text.valid_encoding?

    text
  end

  def hundredths(text, line, column)
    m = DECIMAL.match(text)
    unless m
      raise Weft::PermanentError,
            "CSV line #{line}: #{column} must be a decimal such as 12.34 (at most 9 digits before the point and 2 after)"
    end
    (Integer(m[1], 10) * 100) + Integer((m[2] || '').ljust(2, '0'), 10)
  end

  # Rows as [title, category, price_cents, rating_hundredths, stock], parsed as the TypeScript example does.
  def products(text)
    lines = text.delete_prefix("\uFEFF").split("\n", -1).each_with_index.filter_map do |line, i|
      line = line.delete_suffix("\r")
      [i + 1, line] unless BLANK.match?(line)
    end
    header = lines.first
    cols = header ? header[1].split(',', -1) : []
    at = NEEDED.to_h do |name|
      i = cols.index(name)
      unless i
        raise Weft::PermanentError,
              "CSV header (line #{header ? header[0] : 1}) has no \"#{name}\" column; " \
              'it must name title, category, price, rating and stock'
      end
      [name, i]
    end
    lines.drop(1).map do |no, line|
      f = line.split(',', -1)
      raise Weft::PermanentError, "CSV line #{no} has #{f.size} fields, but the header has #{cols.size}" if f.size != cols.size
      unless WHOLE.match?(f[at['stock']])
        raise Weft::PermanentError, "CSV line #{no}: stock must be a whole number such as 42 (at most 9 digits)"
      end

      [f[at['title']], f[at['category']], hundredths(f[at['price']], no, 'price'),
       hundredths(f[at['rating']], no, 'rating'), Integer(f[at['stock']], 10)]
    end
  end

  def exact_sum(a, b, what)
    raise Weft::PermanentError, "the #{what} passes #{MAX_EXACT}, more than this example sums exactly" if a + b > MAX_EXACT

    a + b
  end

  # JavaScript's Math.round for x >= 0 (halves go up), written out as in the other two examples.
  def js_round(x)
    r = x.floor
    x - r >= 0.5 ? r + 1 : r
  end

  # A Float as JavaScript writes it in JSON: 349, not 349.0.
  def number(x)
    x == x.to_i ? x.to_i : x
  end

  def summary(n, value, counts, max_cents, max_title, ratings)
    {
      'processed_count' => n,
      'total_inventory_value_cents' => value,
      'total_inventory_value' => format('%<whole>d.%<cents>02d', whole: value / 100, cents: value % 100),
      'category_counts' => counts.sort.to_h,
      'max_price' => number(max_cents / 100.0),
      'max_price_product' => max_title,
      'rating_sum_hundredths' => ratings,
      'average_rating' => n.positive? ? number(js_round(ratings.fdiv(n) * 100) / 10_000.0) : 0
    }
  end

  def count(step, field, default)
    v = step.inputs[field]
    v = default if v.nil?
    raise Weft::PermanentError, "inputs.#{field} must be a whole number of at least 1" unless v.is_a?(Integer) && v >= 1

    v
  end
end

Weft.handler('csv.analyze') do |step|
  batch_size = CsvBatch.count(step, 'batch_size', 200)
  max_workers = CsvBatch.count(step, 'max_workers', 5)
  n = CsvBatch.products(CsvBatch.read_csv(step)).size
  next Weft.batches([]) if n.zero?

  workers = [-(-n / batch_size), max_workers].min # Integer#/ floors, so this is the ceiling
  per = -(-n / workers)
  Weft.batches((0...workers).map { |i| { 'start_row' => i * per, 'end_row' => [(i + 1) * per, n].min } })
end

Weft.handler('csv.process_batch') do |step|
  cursor = (step.batch || {})['cursor']
  cursor = {} unless cursor.is_a?(Hash)
  start = cursor['start_row']
  stop = cursor['end_row']
  unless start.is_a?(Integer) && stop.is_a?(Integer) && start >= 0 && stop >= start
    raise Weft::PermanentError,
          'batch.cursor must be {"start_row": a, "end_row": b} with 0 <= a <= b, as csv.analyze returns'
  end
  rows = CsvBatch.products(CsvBatch.read_csv(step))
  if stop > rows.size
    raise Weft::PermanentError,
          "the CSV file has #{rows.size} rows, fewer than this batch's end_row #{stop}: it changed after analyze_csv read it"
  end
  value = 0
  ratings = 0
  counts = Hash.new(0)
  top = nil
  rows[start...stop].each do |title, category, price, rating, stock|
    value = CsvBatch.exact_sum(value, price * stock, 'inventory value in cents')
    ratings = CsvBatch.exact_sum(ratings, rating, 'sum of ratings in hundredths')
    counts[category] += 1
    top = [title, price] if top.nil? || price > top[1]
  end
  CsvBatch.summary(stop - start, value, counts, top ? top[1] : 0, top && top[0], ratings)
end

Weft.handler('csv.aggregate') do |step|
  # Every parent is a batch worker; the no-op placeholder of an empty file has nothing to add.
  n = value = ratings = max_cents = 0
  counts = Hash.new(0)
  max_title = nil
  step.dependency_results.sort.each do |name, r|
    next if r.is_a?(Hash) && r['no_op']

    count = r.is_a?(Hash) ? r['processed_count'] : nil
    raise Weft::PermanentError, "dependency_results.#{name} is not a batch summary of csv.process_batch" unless count.is_a?(Numeric)

    n += count
    value = CsvBatch.exact_sum(value, r['total_inventory_value_cents'], 'inventory value in cents')
    ratings = CsvBatch.exact_sum(ratings, r['rating_sum_hundredths'], 'sum of ratings in hundredths')
    r['category_counts'].each { |c, k| counts[c] += k }
    cents = CsvBatch.js_round(r['max_price'] * 100)
    if !r['max_price_product'].nil? && (max_title.nil? || cents > max_cents)
      max_cents = cents
      max_title = r['max_price_product']
    end
  end
  CsvBatch.summary(n, value, counts, max_cents, max_title, ratings)
end
