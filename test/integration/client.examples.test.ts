/**
 * docs/client.md's examples, run as printed (TypeScript through tsx, Python
 * and Ruby through their interpreters, each as a process) against a real
 * orchestrator API and a native worker on the test database; each must
 * print exactly what the page says it prints. Then what the pages do not
 * show of the Python and Ruby clients: tokens (401, 403), an orchestrator
 * that is not there, their error answers for signals, lists and batches,
 * and the arguments they refuse before sending anything.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { buildApi } from '../../src/api/server.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { silentLogger } from '../../src/shared/logger.js';
import { packageRoot } from '../../src/shared/paths.js';
import { createToken } from '../../src/store/tokens.js';
import { runCommand } from '../support/weft-process.js';

const ROOT = packageRoot();
const PAGE = await readFile(join(ROOT, 'docs/client.md'), 'utf8');
const PACKAGE = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { name: string; exports: Record<string, string> };

interface Example {
  lang: 'ts' | 'python' | 'ruby';
  code: string;
  prints: string;
}

/** Each ```LANG example block of the page with the ```text prints block under it. */
function examples(markdown: string): Example[] {
  const found: Example[] = [];
  const pattern = /```(ts|python|ruby) example\n([\s\S]*?)```\s*```text prints\n([\s\S]*?)```/g;
  for (const m of markdown.matchAll(pattern)) found.push({ lang: m[1] as Example['lang'], code: m[2]!, prints: m[3]! });
  return found;
}

describe('docs/client.md examples against a real orchestrator', () => {
  let tdb: TestDatabase;
  let engine: Engine;
  let api: FastifyInstance;
  let dir: string;
  let env: Record<string, string>;
  const page = PAGE;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-client-examples-'));
    tdb = await createTestDatabase();
    // What the page says: every template, and one native worker (none for Python, so e2e_mixed stays running).
    engine = await startEngine({ backend: 'pg', url: tdb.url, namespaces: ['e2e_linear', 'e2e_mixed', 'e2e_waits'] });
    api = buildApi({
      orchestrator: engine.orchestrators[0]!,
      db: engine.db,
      bus: new PgMessageBus(engine.db, silentLogger()),
      log: silentLogger(),
      auth: { cacheMs: 0 },
      ui: false,
    });
    await api.listen({ host: '127.0.0.1', port: 0 });
    env = {
      WEFT_ORCHESTRATOR_URL: `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`,
      WEFT_API_TOKEN: '',
      PYTHONPATH: join(ROOT, 'workers/python'),
    };
  });
  afterAll(async () => {
    await api?.close();
    await engine?.stop();
    await tdb?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("imports the client by the package's name, which package.json exports", () => {
    const specifiers = [...page.matchAll(/from '([^']+\/client)'/g)].map((m) => m[1]);
    expect(specifiers.length).toBeGreaterThan(0);
    expect(new Set(specifiers)).toEqual(new Set([`${PACKAGE.name}/client`]));
    // The export is the compiled src/client/index.ts.
    expect(PACKAGE.exports['./client']).toBe('./dist/src/client/index.js');
  });

  it('finds four TypeScript, two Python and two Ruby examples', () => {
    expect(examples(page).map((e) => e.lang)).toEqual(['ts', 'ts', 'ts', 'ts', 'python', 'python', 'ruby', 'ruby']);
  });

  it.each(examples(page).map((e, i) => [`${i + 1} (${e.lang})`, e] as const))('example %s prints what the page says', async (_name, example) => {
    const file = join(dir, `example.${example.lang === 'ts' ? 'mts' : example.lang === 'python' ? 'py' : 'rb'}`);
    if (example.lang === 'ts') {
      // The package's own name resolves to its build; here the source is what is tested.
      await writeFile(file, example.code.replaceAll(`'${PACKAGE.name}/client'`, `'${join(ROOT, 'src/client/index.ts')}'`));
      const r = await runCommand(process.execPath, ['--import', 'tsx', file], env);
      expect(r.stderr).toBe('');
      expect(r).toMatchObject({ code: 0, stdout: example.prints });
    } else if (example.lang === 'python') {
      await writeFile(file, example.code);
      const r = await runCommand('python3', [file], env);
      expect(r.stderr).toBe('');
      expect(r).toMatchObject({ code: 0, stdout: example.prints });
    } else {
      await writeFile(file, example.code);
      const r = await runCommand('ruby', ['-I', join(ROOT, 'workers/ruby'), file], env);
      expect(r.stderr).toBe('');
      expect(r).toMatchObject({ code: 0, stdout: example.prints });
    }
  });

  it('Python and Ruby: no URL, a URL that is not http, and nothing listening', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const closed = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await new Promise((resolve) => server.close(resolve));
    const py = await runCommand(
      'python3',
      [
        '-c',
        `from weft.client import Client, UnreachableError
for url in (None, "localhost:8080"):
    try: Client(url)
    except ValueError as e: print(e)
try: Client("${closed}", timeout=5).get_task("x")
except UnreachableError as e: print(type(e).__name__, "${closed}/v1/tasks/x" in str(e))`,
      ],
      { ...env, WEFT_ORCHESTRATOR_URL: '' },
    );
    expect(py.stderr).toBe('');
    expect(py.stdout).toBe(
      "weft.client.Client needs the orchestrator's URL: pass Client('http://127.0.0.1:8080') or set WEFT_ORCHESTRATOR_URL\n" +
        "weft.client.Client: url 'localhost:8080' is not http(s); pass the orchestrator's, e.g. http://127.0.0.1:8080\n" +
        'UnreachableError True\n',
    );
    const rb = await runCommand(
      'ruby',
      [
        '-I',
        join(ROOT, 'workers/ruby'),
        '-e',
        `require 'weft/client'
[nil, 'localhost:8080'].each { |u| begin; Weft::Client.new(u); rescue ArgumentError => e; puts e.message; end }
begin; Weft::Client.new('${closed}', timeout: 5).get_task('x'); rescue Weft::Client::UnreachableError => e; puts "UnreachableError #{e.message.include?('${closed}/v1/tasks/x')}"; end`,
      ],
      { ...env, WEFT_ORCHESTRATOR_URL: '' },
    );
    expect(rb.stderr).toBe('');
    expect(rb.stdout).toBe(
      "Weft::Client needs the orchestrator's URL: pass Weft::Client.new('http://127.0.0.1:8080') or set WEFT_ORCHESTRATOR_URL\n" +
        'Weft::Client: url "localhost:8080" is not http(s); pass the orchestrator\'s, e.g. http://127.0.0.1:8080\n' +
        'UnreachableError true\n',
    );
  });

  it('Python and Ruby: run_at kept to the millisecond, retry, list, find by key, signal errors, batches split, and arguments refused before sending', async () => {
    const py = await runCommand(
      'python3',
      [
        '-c',
        `from datetime import datetime, timedelta, timezone
from weft.client import Client, ConflictError, NotFoundError, InvalidInputError
weft = Client()
at = (datetime.now(timezone(timedelta(hours=2))) + timedelta(days=2)).replace(microsecond=678000)
t = weft.create_task("e2e_linear", "mathematical_sequence", {"even_number": 2}, run_at=at, idempotency_key="py-later")
seen = weft.get_task_by_key("py-later")
print(seen["id"] == t["id"], seen["state"], datetime.fromisoformat(seen["run_at"].replace("Z", "+00:00")) == at)
try: weft.signal_step(t["id"], "linear_step_1", {})
except ConflictError as e: print(e.status, e.code)
try: weft.signal_step(t["id"], "nope")
except NotFoundError as e: print(e.status)
print(weft.cancel_task(t["id"])["state"], weft.retry_task(t["id"])["state"], weft.cancel_task(t["id"])["state"])
page = weft.list_tasks(template="e2e_linear/mathematical_sequence", state="cancelled", q="py-later", limit=5)
print([x["id"] == t["id"] for x in page["tasks"]], page["counts"]["cancelled"])
try: weft.list_tasks(state="lost")
except InvalidInputError as e: print(e.status, e.body["path"])
items = [{"namespace": "e2e_linear", "name": "mathematical_sequence", "context": {"even_number": n}} for n in (2, 3, 4)] + [{"namespace": "e2e_linear"}]
b = weft.create_tasks(items, batch_size=2)
print(b["created"], b["failed"], [(r["index"], r.get("outcome") or r["error"]["path"]) for r in b["results"]])
print(weft.create_tasks([]))
for call in (
    lambda: weft.create_task("e2e_linear", "mathematical_sequence", run_at=datetime(2099, 1, 1)),
    lambda: weft.create_tasks(items, batch_size=0),
    lambda: weft.create_tasks([{"namespace": "e2e_linear", "nmae": "x"}]),
    lambda: weft.list_tasks(template="no-slash"),
):
    try: call()
    except (ValueError, TypeError) as e: print(type(e).__name__, e)`,
      ],
      env,
    );
    expect(py.stderr).toBe('');
    expect(py.stdout).toBe(
      'True pending True\n409 conflict\n404\ncancelled running cancelled\n[True] 1\n400 state\n' +
        "2 2 [(0, 'created'), (1, 'context.even_number'), (2, 'created'), (3, 'name')]\n" +
        "{'created': 0, 'existing': 0, 'failed': 0, 'results': []}\n" +
        'ValueError run_at: datetime 2099-01-01T00:00:00 has no time zone; pass an aware one, e.g. datetime.now(timezone.utc) + timedelta(hours=1)\n' +
        'ValueError create_tasks: batch_size must be an integer >= 1, got 0\n' +
        "TypeError create_tasks: tasks[0] has unknown key 'nmae'; an item takes namespace, name, context, version, idempotency_key, run_at, delay\n" +
        "ValueError list_tasks: template 'no-slash' is not NAMESPACE/NAME, e.g. e2e_linear/mathematical_sequence\n",
    );
    const rb = await runCommand(
      'ruby',
      [
        '-I',
        join(ROOT, 'workers/ruby'),
        '-e',
        `require 'weft/client'
weft = Weft::Client.new
t = weft.create_task('e2e_linear', 'mathematical_sequence', context: { even_number: 2 }, delay: 7200, idempotency_key: 'rb-later')
seen = weft.get_task_by_key('rb-later')
puts [seen['id'] == t['id'], seen['state'], (Time.iso8601(seen['run_at']) - Time.now).between?(7000, 7200)].join(' ')
begin; weft.signal_step(t['id'], 'linear_step_1', {}); rescue Weft::Client::ConflictError => e; puts [e.status, e.code].join(' '); end
begin; weft.signal_callback('/v1/callbacks/' + ('0' * 64), {}); rescue Weft::Client::NotFoundError => e; puts e.status; end
puts [weft.cancel_task(t['id'])['state'], weft.retry_task(t['id'])['state'], weft.cancel_task(t['id'])['state']].join(' ')
page = weft.list_tasks(template: 'e2e_linear/mathematical_sequence', state: 'cancelled', q: 'rb-later', limit: 5)
puts [page['tasks'].map { |x| x['id'] == t['id'] }.inspect, page['counts']['cancelled']].join(' ')
items = [2, 3, 4].map { |n| { 'namespace' => 'e2e_linear', 'name' => 'mathematical_sequence', 'context' => { 'even_number' => n } } }
b = weft.create_tasks(items, batch_size: 2)
puts [b['created'], b['failed'], b['results'].map { |r| "#{r['index']}:#{r['outcome'] || r['error']['path']}" }.join(',')].join(' ')
puts weft.create_tasks([]).to_json
[-> { weft.create_tasks(items, batch_size: 0) }, -> { weft.create_tasks([{ namespace: 'e2e_linear', nmae: 'x' }]) },
 -> { weft.list_tasks(template: 'no-slash') }].each do |call|
  call.call
rescue ArgumentError => e
  puts e.message
end`,
      ],
      env,
    );
    expect(rb.stderr).toBe('');
    expect(rb.stdout).toBe(
      'true pending true\n409 conflict\n404\ncancelled running cancelled\n[true] 1\n' +
        '2 1 0:created,1:context.even_number,2:created\n' +
        '{"created":0,"existing":0,"failed":0,"results":[]}\n' +
        'create_tasks: batch_size must be an integer >= 1, got 0\n' +
        'create_tasks: tasks[0] has unknown key :nmae; an item takes namespace, name, context, version, idempotency_key, run_at, delay\n' +
        'list_tasks: template "no-slash" is not NAMESPACE/NAME, e.g. e2e_linear/mathematical_sequence\n',
    );
  });

  it('Ruby: calls that send no arguments (pause, resume, cancel without a reason) reach the API as JSON, not as an empty form it refuses (415)', async () => {
    const rb = await runCommand(
      'ruby',
      [
        '-I',
        join(ROOT, 'workers/ruby'),
        '-e',
        `require 'weft/client'
weft = Weft::Client.new
weft.create_schedule('rb-no-body', template: 'reports/nightly_report', cron: '0 9 * * *', context: { report: 'digest' })
puts [weft.pause_schedule('rb-no-body')['paused'], weft.resume_schedule('rb-no-body')['paused'], weft.delete_schedule('rb-no-body')['deleted']].join(' ')
t = weft.create_task('e2e_linear', 'mathematical_sequence', context: { even_number: 2 }, delay: 3600)
puts weft.cancel_task(t['id'])['state']`,
      ],
      env,
    );
    expect(rb.stderr).toBe('');
    expect(rb.stdout).toBe('true false true\ncancelled\n');
  });

  // Last: once a token exists every call needs one.
  it('Python and Ruby send the token: 401 without or with a wrong one, 403 when its scope is too low', async () => {
    const reader = await createToken(engine.db, 'examples-reader', ['read']);
    const writer = await createToken(engine.db, 'examples-writer', ['write']);
    const py = await runCommand(
      'python3',
      [
        '-c',
        `from weft.client import Client, ForbiddenError, UnauthorizedError
for token in ("", "weft_wrong"):
    try: Client(token=token).get_task("01a21e54-5be0-76be-97b1-9441a6c8e351")
    except UnauthorizedError as e: print(e.status, e.code)
try: Client(token="${reader.token}").create_task("e2e_linear", "mathematical_sequence", {"even_number": 2})
except ForbiddenError as e: print(e.status, e.code)
t = Client(token="${writer.token}").create_task("e2e_linear", "mathematical_sequence", {"even_number": 2})
print(Client(token="${reader.token}").wait_for_task(t["id"])["state"])`,
      ],
      env,
    );
    expect(py.stderr).toBe('');
    expect(py.stdout).toBe('401 token_required\n401 token_invalid\n403 forbidden\ncomplete\n');
    const rb = await runCommand(
      'ruby',
      [
        '-I',
        join(ROOT, 'workers/ruby'),
        '-e',
        `require 'weft/client'
['', 'weft_wrong'].each do |token|
  Weft::Client.new(token: token).get_task('01a21e54-5be0-76be-97b1-9441a6c8e351')
rescue Weft::Client::UnauthorizedError => e
  puts [e.status, e.code].join(' ')
end
begin
  Weft::Client.new(token: '${reader.token}').create_task('e2e_linear', 'mathematical_sequence', context: { even_number: 2 })
rescue Weft::Client::ForbiddenError => e
  puts [e.status, e.code].join(' ')
end
t = Weft::Client.new(token: '${writer.token}').create_task('e2e_linear', 'mathematical_sequence', context: { even_number: 2 })
puts Weft::Client.new(token: '${reader.token}').wait_for_task(t['id'])['state']`,
      ],
      env,
    );
    expect(rb.stderr).toBe('');
    expect(rb.stdout).toBe('401 token_required\n401 token_invalid\n403 forbidden\ncomplete\n');
  });
});
