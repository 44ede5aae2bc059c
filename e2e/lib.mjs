// Helpers for glassbox's end-to-end tests: start the real binary on a random
// loopback port with a throwaway data dir, drive Debian's Chromium through
// playwright-core, take screenshots, and watch pages for console errors and
// failed requests.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { access, constants, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const BIN = path.resolve(HERE, process.env.GLASSBOX_BIN || '../target/debug/glassbox');
export const ARTIFACTS = path.join(HERE, 'artifacts');

export const DEMO_ADMIN = { email: 'admin@example.com', password: 'glassbox-demo' };
export const DEMO_ANALYST = { email: 'alice.novak@example.com', password: 'glassbox-demo' };

const LISTEN_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
// The binary may be relinked by a concurrent build; give it a while to reappear.
const BIN_WAIT_MS = 60_000;
const STDERR_KEEP = 64 * 1024;

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitForBinary() {
  const deadline = Date.now() + BIN_WAIT_MS;
  for (;;) {
    try {
      await access(BIN, constants.X_OK);
      return;
    } catch (e) {
      if (Date.now() > deadline) {
        throw new Error(
          `glassbox binary not found or not executable at ${BIN} (set GLASSBOX_BIN, or build it with \`cargo build\`): ${e.message}`,
        );
      }
      await sleep(1000);
    }
  }
}

/** The parent's environment without anything that could configure the server
 *  from outside the test (GLASSBOX_*, and the external services' keys and base
 *  URLs, so that nothing in a test reaches the network). */
function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(GLASSBOX_|ANTHROPIC_|TELEGRAM_|POSTHOG_|SESSION_DATA_DIR$|RUST_LOG$)/.test(k)) continue;
    env[k] = v;
  }
  env.NO_COLOR = '1';
  return env;
}

/**
 * Start `glassbox serve` (or `glassbox demo` with `{demo: true}`) on
 * 127.0.0.1:0 with a fresh temp data dir.
 * @param {{demo?: boolean, env?: Record<string,string>}} [opts]
 * @returns {Promise<{url: string, dataDir: string, stop: () => Promise<void>, stderr: () => string}>}
 */
export async function startServer({ demo = false, env = {} } = {}) {
  await waitForBinary();
  const root = await mkdtemp(path.join(tmpdir(), 'glassbox-e2e-'));
  const dataDir = path.join(root, 'data');
  const args = demo
    ? ['demo', '--data-dir', dataDir, '--bind', '127.0.0.1:0']
    : ['serve'];
  const childEnv = { ...cleanEnv(), GLASSBOX_DATA_DIR: dataDir, GLASSBOX_BIND: '127.0.0.1:0', ...env };

  let child;
  for (let attempt = 0; ; attempt++) {
    child = spawn(BIN, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await once(child, 'spawn');
      break;
    } catch (e) {
      // ENOENT / ETXTBSY while the binary is being relinked: wait and retry.
      if (attempt >= 20 || !['ENOENT', 'ETXTBSY', 'EACCES'].includes(e.code)) {
        await rm(root, { recursive: true, force: true });
        throw new Error(`could not start ${BIN}: ${e.message}`);
      }
      await sleep(1000);
      await waitForBinary();
    }
  }
  running.add(child);

  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > STDERR_KEEP) stderr = stderr.slice(-STDERR_KEEP);
  });
  let stdout = '';
  // 'exit', then a moment for the pipes to drain so stderr is complete (a
  // grandchild holding them open must not hang us).
  const stdioClosed = once(child, 'close').catch(() => {});
  const exited = new Promise((resolve) => {
    child.on('exit', async (code, signal) => {
      running.delete(child);
      let drain;
      await Promise.race([stdioClosed, new Promise((r) => (drain = setTimeout(r, 2000)))]);
      clearTimeout(drain);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ code, signal });
    });
  });

  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(
        new Error(
          `glassbox ${args[0]} ${why}\n--- stdout ---\n${stdout}\n--- stderr (tail) ---\n${stderr.slice(-8000)}`,
        ),
      );
    };
    const timer = setTimeout(
      () => fail(`printed no "listening" line within ${LISTEN_TIMEOUT_MS / 1000} s`),
      LISTEN_TIMEOUT_MS,
    );
    lines.on('line', (line) => {
      // Kept (bounded) for the error message; reading on also keeps the pipe drained.
      stdout = (stdout + line + '\n').slice(-STDERR_KEEP);
      const m = /glassbox listening on (http:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    });
    exited.then(({ code, signal }) => fail(`exited early (code ${code}, signal ${signal})`));
  }).catch(async (e) => {
    await exited;
    await rm(root, { recursive: true, force: true });
    throw e;
  });

  let stopped = null;
  async function stop() {
    if (stopped) return stopped;
    stopped = (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      let timer;
      const result = await Promise.race([
        exited,
        new Promise((r) => {
          timer = setTimeout(() => r(null), STOP_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
      if (result === null) {
        child.kill('SIGKILL');
        await exited;
      }
      if (!process.env.GLASSBOX_E2E_KEEP) await rm(root, { recursive: true, force: true });
      if (result === null) {
        throw new Error(
          `glassbox did not shut down within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM\n--- stderr (tail) ---\n${stderr.slice(-8000)}`,
        );
      }
      if (result.code !== 0) {
        throw new Error(
          `glassbox exited with code ${result.code} (signal ${result.signal}) on SIGTERM, not a graceful shutdown\n--- stderr (tail) ---\n${stderr.slice(-8000)}`,
        );
      }
    })();
    return stopped;
  }

  return { url, dataDir, stop, stderr: () => stderr };
}

/** Debian's Chromium, headless, with nothing that phones home. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A fresh context (own cookies; optionally the viewer's time zone and locale)
 * and page, watched for trouble:
 * `problems.console` (console errors and uncaught exceptions),
 * `problems.failed` (requests that failed at the network level) and
 * `problems.http` (responses with status >= 400; some are expected, e.g. a
 * refused sign-in, so tests decide what to assert on those).
 */
export async function newPage(browser, { baseURL, timezoneId, locale } = {}) {
  const context = await browser.newContext({ baseURL, timezoneId, locale, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.setDefaultNavigationTimeout(15_000);
  const problems = { console: [], failed: [], http: [] };
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      const loc = msg.location();
      problems.console.push(`${msg.text()} (${loc.url || page.url()}${loc.lineNumber ? ':' + loc.lineNumber : ''})`);
    }
  });
  page.on('pageerror', (err) => problems.console.push(`uncaught: ${err.message} (${page.url()})`));
  page.on('requestfailed', (req) => {
    const why = req.failure()?.errorText || 'failed';
    // Navigating away aborts whatever the old page still had in flight (its
    // document, its favicon, …): a cancellation, not a failure.
    if (why === 'net::ERR_ABORTED') return;
    problems.failed.push(`${req.method()} ${req.url()}: ${why}`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) problems.http.push(`${res.status()} ${res.request().method()} ${res.url()}`);
  });
  return { context, page, problems };
}

/**
 * Fail if the page saw console errors, uncaught exceptions, failed requests or
 * HTTP errors. `allowHttp` lists regexps over "STATUS METHOD URL" for error
 * statuses a test expects (a refused sign-in is a 401 page); Chromium's own
 * "Failed to load resource: … status of N" console line for such a response is
 * let through with it, and nothing else is.
 */
export function assertClean(problems, { allowHttp = [] } = {}) {
  const allowed = problems.http.filter((h) => allowHttp.some((re) => re.test(h)));
  const allowedKeys = new Set(allowed.map((h) => h.replace(/^(\d+) \S+ /, '$1 ')));
  const http = problems.http.filter((h) => !allowed.includes(h));
  const consoleErrors = problems.console.filter((c) => {
    const m = /^Failed to load resource: the server responded with a status of (\d+)\b.*\((\S+?)(?::\d+)?\)$/.exec(c);
    return !(m && allowedKeys.has(`${m[1]} ${m[2]}`));
  });
  const all = [
    ...consoleErrors.map((s) => `console: ${s}`),
    ...problems.failed.map((s) => `request failed: ${s}`),
    ...http.map((s) => `http: ${s}`),
  ];
  if (all.length) throw new Error(`the browser saw problems:\n  ${all.join('\n  ')}`);
}

/** Save a full-page PNG to e2e/artifacts/<name>.png. */
export async function shot(page, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Sign in through the /login form; resolves once the page has left /login. */
export async function signIn(page, baseURL, { email, password }) {
  await page.goto(`${baseURL}/login`);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
}

/** A JSON request to the API; returns {status, body, headers}. */
export async function api(baseURL, method, urlPath, { token, body } = {}) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(baseURL + urlPath, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** A bearer token for email/password from `POST /auth/token`. */
export async function passwordToken(baseURL, email, password) {
  const res = await api(baseURL, 'POST', '/auth/token', { body: { email, password } });
  if (res.status !== 200 || !res.body?.access_token) {
    throw new Error(`POST /auth/token for ${email}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body.access_token;
}
