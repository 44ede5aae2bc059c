// The feedback inbox on demo data, in a real browser: an analyst reports
// through the API; an admin opens the report, assigns it, tags it, resolves
// it and reopens it.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { DEMO_ADMIN, DEMO_ANALYST, api, assertClean, launchBrowser, newPage, passwordToken, shot, signIn, startServer } from './lib.mjs';

describe('the feedback inbox', () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ demo: true });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('report as an analyst, then assign, tag, resolve and reopen as an admin', async () => {
    const token = await passwordToken(server.url, DEMO_ANALYST.email, DEMO_ANALYST.password);
    const errorLine = JSON.stringify({
      type: 'user',
      version: '2.0.14',
      message: { content: [{ type: 'tool_result', tool_use_id: 't1', content: 'Error: e2e relation missing', is_error: true }] },
    });
    const res = await api(server.url, 'POST', '/api/feedback', {
      token,
      body: {
        message: 'E2E: the query tool fails\nwith more detail',
        session_excerpt: `${errorLine}\n`,
        session_file: 'e2e-session.jsonl',
        environment: { os: 'linux x86_64', glassbox_version: 'e2e' },
        ack_preview: true,
      },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const id = res.body.id;
    assert.equal(res.body.duplicates, 0);

    const { page, problems } = await newPage(browser);
    await signIn(page, server.url, DEMO_ADMIN);
    await page.goto(`${server.url}/admin/feedback`);
    await page.locator('.kpi[data-kpi=open] .kpi-value').waitFor();
    // The demo's dozen reports plus ours, every status present.
    assert.equal((await page.locator('#total').textContent()).trim(), '13');
    const statuses = new Set(await page.locator('tr[data-report]').evaluateAll((rows) => rows.map((r) => r.dataset.status)));
    for (const s of ['open', 'triaged', 'resolved', 'wontfix']) assert.ok(statuses.has(s), `a ${s} report is listed`);
    await shot(page, 'feedback-inbox');

    // A facet narrows the list through the URL.
    await page.selectOption('#f-status', 'wontfix');
    await page.waitForURL((u) => u.searchParams.get('status') === 'wontfix');
    await page.waitForFunction(() => !document.querySelector('.htmx-request'));
    const shown = await page.locator('tr[data-report]').evaluateAll((rows) => rows.map((r) => r.dataset.status));
    assert.ok(shown.length > 0 && shown.every((s) => s === 'wontfix'));

    await page.goto(`${server.url}/admin/feedback/${id}`);
    assert.match(await page.locator('#report-message').textContent(), /E2E: the query tool fails/);
    assert.equal(await page.locator('#report-excerpt .turn.is-error').count(), 1);
    assert.match(await page.locator('#session-link').getAttribute('href'), /^\/admin\/sessions\/[0-9a-f-]+\/e2e-session\.jsonl$/);
    await shot(page, 'feedback-report-open');

    await Promise.all([page.waitForNavigation(), page.click('#act-assign')]);
    assert.equal((await page.locator('#report-status').textContent()).trim(), 'triaged');
    assert.equal((await page.locator('#report-assignee').textContent()).trim(), DEMO_ADMIN.email);

    await page.fill('#act-tags', 'query, e2e');
    await Promise.all([page.waitForNavigation(), page.click('#act-tag')]);
    assert.equal((await page.locator('#report-tags').textContent()).replace(/\s+/g, ' ').trim(), 'query e2e');

    await page.fill('#act-resolution', 'Created the missing relation.');
    await Promise.all([page.waitForNavigation(), page.click('#act-resolve')]);
    assert.equal((await page.locator('#report-status').textContent()).trim(), 'resolved');
    assert.match(await page.locator('#report-resolution').textContent(), /Created the missing relation/);
    await shot(page, 'feedback-report-resolved');

    await Promise.all([page.waitForNavigation(), page.click('#act-reopen')]);
    assert.equal((await page.locator('#report-status').textContent()).trim(), 'open');
    const history = await page.locator('#report-history li').evaluateAll((li) => li.map((l) => l.dataset.action));
    assert.deepEqual(history, ['feedback.report', 'feedback.assign', 'feedback.tag', 'feedback.resolve', 'feedback.reopen']);
    await shot(page, 'feedback-report-history');
    assertClean(problems);

    // The analyst sees it, with its status, on /me/feedback.
    const mine = await api(server.url, 'GET', '/api/me/feedback', { token });
    assert.equal(mine.status, 200);
    assert.ok(mine.body.reports.some((r) => r.id === id && r.status === 'open'));
  });
});
