// The Telemetry page on demo data, in a real browser: KPI cards and buckets
// filter, group-by / sort / pages / the trend's series switch are URL state,
// each export holds the events the KPI card counts, an analyst's page holds
// their own events, and the Ask box against a stub Messages API shows rows
// for a good answer and the refusal for hostile SQL.

import assert from 'node:assert/strict';
import { readFile, writeFile, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { DuckDBInstance } from '@duckdb/node-api';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { DEMO_ADMIN, DEMO_ANALYST, assertClean, launchBrowser, newPage, shot, signIn, startServer } from './lib.mjs';

const WINDOW = 'since_minutes=525600';
const GOOD_SQL = 'SELECT tool_name, count(*) AS n FROM usage_events GROUP BY tool_name ORDER BY n DESC, tool_name';
const HOSTILE_SQL = 'SELECT 1; DROP TABLE usage_events';

/** A Messages API stand-in: hostile SQL when the question says "hostile". */
function startStub() {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const question = JSON.parse(body || '{}').messages?.[0]?.content ?? '';
      const sql = String(question).includes('hostile') ? HOSTILE_SQL : GOOD_SQL;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id: 'msg_1', type: 'message', role: 'assistant', model: 'stub', stop_reason: 'tool_use',
        content: [{ type: 'tool_use', id: 't1', name: 'answer', input: { sql, rationale: 'Counts tool calls per tool.' } }],
      }));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** CSV records (quoted fields may hold newlines), header excluded. */
function csvRecords(text) {
  let n = 0;
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    else if (ch === '\n' && !quoted) n += 1;
  }
  if (text.length && !text.endsWith('\n')) n += 1;
  return n - 1;
}

const number = (s) => Number(String(s).replace(/[^0-9]/g, ''));

describe('the telemetry page', () => {
  let server;
  let stub;
  let browser;

  before(async () => {
    stub = await startStub();
    const { port } = stub.address();
    server = await startServer({
      demo: true,
      env: { ANTHROPIC_API_KEY: 'test-key', ANTHROPIC_BASE_URL: `http://127.0.0.1:${port}` },
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    stub?.close();
  });

  test('KPI cards, buckets, group-by, sort, pages and the series switch are URL state', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, DEMO_ADMIN);
      await page.goto(`${server.url}/admin/telemetry?${WINDOW}`);
      assert.equal(await page.locator('section.kpis .kpi').count(), 6);
      assert.ok((await page.locator('svg#trend-chart rect.bar').count()) > 0, 'the trend has bars');
      assert.match(await page.locator('#busiest').innerText(), /Busiest weekday: (Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day/);
      await shot(page, 'telemetry-page');

      // The error-rate card keeps the window and shows only errors.
      await page.click('[data-kpi=errors]');
      await page.waitForURL((u) => u.searchParams.get('only_errors') === 'true' && u.searchParams.get('since_minutes') === '525600');
      await page.locator('[data-kpi=errors].active').waitFor();
      const errors = number(await page.locator('[data-kpi=events] .kpi-value').innerText());
      assert.ok(errors > 0, 'demo data has errors');
      assert.equal(await page.locator('#events tbody tr.row-error').count(), Math.min(errors, 50));

      // Group by session: sort by bucket, next page, apply a bucket.
      await page.goto(`${server.url}/admin/telemetry?${WINDOW}`);
      await page.selectOption('#f-group', 'session_id');
      await page.waitForURL((u) => u.searchParams.get('group_by') === 'session_id');
      await page.locator('#buckets tbody tr').first().waitFor();
      await page.click('#buckets thead a[data-sort=bucket]');
      await page.waitForURL((u) => u.searchParams.get('sort') === 'bucket');
      const firstBucket = await page.locator('#buckets a.bucket').first().innerText();
      const next = page.locator('#pager a[rel=next]');
      if ((await next.count()) > 0) {
        await next.click();
        await page.waitForURL((u) => u.searchParams.get('page') === '2');
        await page.waitForFunction((b) => document.querySelector('#buckets a.bucket')?.textContent !== b, firstBucket);
      }
      await shot(page, 'telemetry-by-session');
      const bucket = page.locator('#buckets a.bucket').first();
      const sid = await bucket.innerText();
      await bucket.click();
      await page.waitForURL((u) => u.searchParams.get('session_id') === sid && u.searchParams.get('since_minutes') === '525600');
      await page.locator('#events tbody tr').first().waitFor();
      const sessions = await page.locator('#events tbody tr td:nth-child(7)').allInnerTexts();
      assert.ok(sessions.length > 0 && sessions.every((s) => s === sid), 'only that session');

      // The trend's second series.
      await page.goto(`${server.url}/admin/telemetry?${WINDOW}`);
      await page.click('#series-cost');
      await page.waitForURL((u) => u.searchParams.get('series') === 'cost');
      await page.locator('svg#trend-chart[data-series=cost] polyline.series-line').waitFor();
      await page.click('#series-tokens');
      await page.waitForURL((u) => u.searchParams.get('series') === 'tokens');
      await page.locator('svg#trend-chart[data-series=tokens] polyline.series-line').waitFor();
      await shot(page, 'telemetry-tokens-series');
      assertClean(problems);
    } finally {
      await context.close();
    }
  });

  test('each export holds the events the KPI card counts', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, DEMO_ADMIN);
      await page.goto(`${server.url}/admin/telemetry?${WINDOW}&event_type=subagent`);
      const events = number(await page.locator('[data-kpi=events] .kpi-value').innerText());
      assert.ok(events > 0);
      const save = async (id) => {
        const [download] = await Promise.all([page.waitForEvent('download'), page.click(id)]);
        assert.equal(await download.failure(), null);
        return readFile(await download.path());
      };
      const csv = (await save('#export-csv')).toString('utf8');
      assert.equal(csvRecords(csv), events, 'CSV rows');
      const ndjson = (await save('#export-ndjson')).toString('utf8').split('\n').filter((l) => l.trim());
      assert.equal(ndjson.length, events, 'NDJSON rows');
      assert.ok(ndjson.every((l) => JSON.parse(l).event_type === 'subagent'), 'the filter is kept');
      const parquet = await save('#export-parquet');
      assert.equal(parquet.subarray(0, 4).toString('latin1'), 'PAR1');
      // Read the Parquet file back with DuckDB itself.
      const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'gb-parquet-')), 'telemetry.parquet');
      await writeFile(file, parquet);
      const db = await DuckDBInstance.create(':memory:');
      const conn = await db.connect();
      const read = await conn.runAndReadAll(
        `SELECT count(*)::INTEGER AS n, count(*) FILTER (WHERE event_type = 'subagent')::INTEGER AS kept FROM read_parquet('${file}')`,
      );
      const [{ n, kept }] = read.getRowObjects();
      assert.equal(n, events, 'Parquet rows');
      assert.equal(kept, events, 'the filter is kept in Parquet too');
      conn.closeSync?.();
      assertClean(problems);
    } finally {
      await context.close();
    }
  });

  test('the Product usage tab shows event types by user and follows its range', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, DEMO_ADMIN);
      await page.goto(`${server.url}/admin/telemetry`);
      await page.click('#tab-product');
      await page.waitForURL((u) => u.pathname === '/admin/telemetry/product');
      const total = number(await page.locator('#total').innerText());
      assert.ok(total > 0, 'the demo has usage API events');
      assert.equal(number(await page.locator('[data-kpi=app_events] .kpi-value').innerText()), total);
      const rowTotals = (await page.locator('#matrix tbody td.total').allInnerTexts()).map(number);
      assert.equal(rowTotals.reduce((a, b) => a + b, 0), total, 'the rows add up to the total');
      assert.ok((await page.locator('svg#trend-chart rect.bar').count()) >= 28, 'a bar a day');
      await shot(page, 'telemetry-product-usage');
      await page.click('#ranges a:has-text("Last 7 days")');
      await page.waitForURL((u) => u.searchParams.get('days') === '7');
      await page.waitForFunction(() => document.querySelectorAll('svg#trend-chart rect.bar').length === 7);
      assert.ok(number(await page.locator('#total').innerText()) < total, 'fewer events in 7 days');
      assertClean(problems);
    } finally {
      await context.close();
    }
  });

  test('an analyst sees only their own events', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, DEMO_ANALYST);
      await page.goto(`${server.url}/me/telemetry?${WINDOW}&group_by=username`);
      const buckets = await page.locator('#buckets tbody a.bucket').allInnerTexts();
      assert.equal(buckets.length, 1, `one user: ${buckets}`);
      assert.equal(await page.locator('#ask-form').count(), 0, 'no Ask box');
      const res = await page.request.get(`${server.url}/api/me/telemetry/kpis?${WINDOW}`);
      const mine = (await res.json()).events_total;
      assert.equal(number(await page.locator('[data-kpi=events] .kpi-value').innerText()), mine);
      assert.equal(number(await page.locator('#buckets tbody td.num').first().innerText()), mine);
      await shot(page, 'telemetry-me');
      assertClean(problems);
    } finally {
      await context.close();
    }
  });

  test('the Ask box shows rows for a good answer and the refusal of hostile SQL', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, DEMO_ADMIN);
      await page.goto(`${server.url}/admin/telemetry?${WINDOW}`);
      await page.fill('#ask-question', 'Which tools are used most?');
      await page.click('#ask-form button[type=submit]');
      await page.locator('#ask-table tbody tr').first().waitFor();
      assert.equal(await page.locator('#ask-sql').innerText(), GOOD_SQL);
      assert.match(await page.locator('#ask-rationale').innerText(), /Counts tool calls/);
      assert.ok((await page.locator('#ask-table tbody tr').count()) > 0);
      await shot(page, 'telemetry-ask-good');

      await page.fill('#ask-question', 'a hostile one');
      await page.click('#ask-form button[type=submit]');
      await page.locator('#ask-rejected').waitFor();
      assert.match(await page.locator('#ask-rejected').innerText(), /refused: .+/);
      assert.equal(await page.locator('#ask-sql').innerText(), HOSTILE_SQL);
      assert.equal(await page.locator('#ask-table').count(), 0);
      await shot(page, 'telemetry-ask-rejected');
      assertClean(problems);
    } finally {
      await context.close();
    }
  });
});
