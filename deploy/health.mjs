// GET a weft /health URL: exit 0 on 200; otherwise print the status and the
// body (which says why: "starting", "degraded", what it waits for) and exit 1.
// The image's health checks run it (deploy/entrypoint.sh health URL): the
// final image has node but no curl.
const url = process.argv[2];
if (!url) {
  console.error('usage: entrypoint.sh health URL, e.g. http://127.0.0.1:8080/health');
  process.exit(64);
}
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const body = await res.text();
  if (res.status === 200) process.exit(0);
  console.error(`${url} answered ${res.status}: ${body.slice(0, 500)}`);
} catch (err) {
  console.error(`${url} did not answer: ${err instanceof Error ? (err.cause?.message ?? err.message) : String(err)}`);
}
process.exit(1);
