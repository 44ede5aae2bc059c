// The Audit log page on demo data (60k audit rows over 30 days), in a real browser.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';

import { DEMO_ADMIN, assertClean, launchBrowser, newPage, shot, signIn, startServer } from './lib.mjs';

describe('the audit log page', () => {
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

  const rowCount = (page) => page.locator('#rows tr.audit-row').count();
  const params = (page) => new URL(page.url()).searchParams;
  /** Waits until htmx has no request in flight and the KPI cards and facet options are in. */
  const settled = (page) =>
    page.waitForFunction(
      () =>
        !document.querySelector('.htmx-request') &&
        !document.querySelector('[data-facets-pending]') &&
        !document.querySelector('[data-kpis-pending]'),
      null,
      { timeout: 15_000 },
    );

  test('KPI cards, facets, search, load more, the side panel and back/forward', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, DEMO_ADMIN);
      assert.equal(new URL(page.url()).pathname, '/admin/activity');
      await page.locator('.kpi[data-kpi=events] .kpi-value').waitFor();
      assert.equal(await rowCount(page), 50);
      assert.equal(await page.locator('.pulse .pulse-field').count(), 6);
      assert.ok((await page.locator('.sync-cell').count()) > 0, 'the sync grid has tables');
      // Times are shown in the viewer's zone (app.js), not as raw ISO strings.
      const firstTime = await page.locator('#rows tr.audit-row time').first().textContent();
      assert.ok(!/Z$/.test(firstTime.trim()), `localized time, got ${firstTime}`);
      await shot(page, 'activity-page');

      // KPI card: error rate applies result_class=error and changes the URL.
      await page.click('.kpi[data-kpi=errors]');
      await page.waitForURL((u) => u.searchParams.get('result_class') === 'error');
      await settled(page);
      assert.equal(await page.locator('#f-result').inputValue(), 'error');
      const results = await page.locator('#rows tr.audit-row td:nth-child(4) .chip').evaluateAll((els) =>
        els.map((e) => e.className),
      );
      assert.ok(results.length > 0 && results.every((c) => c.includes('result-error')), 'only errors');
      assert.ok(await page.locator('.kpi[data-kpi=errors].active').count(), 'the card shows it is applied');
      await shot(page, 'activity-errors');

      // Active users card: focuses the user facet select.
      await page.click('.kpi[data-kpi=users]');
      await page.waitForFunction(() => document.activeElement?.id === 'f-user');
      await page.keyboard.press('Escape');

      // Back restores the unfiltered page (the form is rendered from the URL).
      // htmx keeps no history cache: going back reloads the page from its URL.
      await page.evaluate(() => { window.__beforeBack = true; });
      await page.goBack();
      await page.waitForFunction(() => !window.__beforeBack && document.readyState === 'complete');
      assert.equal(params(page).get('result_class'), null);
      assert.equal(await page.locator('#f-result').inputValue(), '');
      await page.locator('.kpi[data-kpi=errors]:not(.active)').waitFor();

      // Pick a facet.
      await page.selectOption('#f-action', 'query.run');
      await page.waitForURL((u) => u.searchParams.get('action') === 'query.run');
      await settled(page);
      const actions = await page.locator('#rows tr.audit-row td:nth-child(2)').allTextContents();
      assert.ok(actions.length > 0 && actions.every((a) => a.trim() === 'query.run'), 'only query.run');

      // Search (case-insensitive, over params).
      await page.fill('#f-q', 'select * from ORDERS');
      await page.press('#f-q', 'End'); // the search runs on keyup (300 ms debounce)
      await page.waitForURL((u) => u.searchParams.get('q') === 'select * from ORDERS');
      await settled(page);
      const resources = await page.locator('#rows tr.audit-row td:nth-child(7)').allTextContents();
      assert.ok(resources.length > 0, 'the search finds rows');
      assert.ok(resources.every((r) => r.trim() === 'table:orders'), 'only the orders table');
      await shot(page, 'activity-search');

      // Load more (30 days, so there are more than 50 matches).
      await page.selectOption('#f-range', '43200');
      await page.waitForURL((u) => u.searchParams.get('since_minutes') === '43200');
      await settled(page);
      assert.equal(await rowCount(page), 50);
      await page.click('#rows tr.load-more button');
      await page.waitForFunction(() => document.querySelectorAll('#rows tr.audit-row').length === 100);
      const ids = await page.locator('#rows tr.audit-row').evaluateAll((rs) => rs.map((r) => r.dataset.id));
      assert.equal(new Set(ids).size, 100, 'no repeated rows');

      // The side panel: masked SQL.
      await page.locator('#rows tr.audit-row').first().click();
      const json = page.locator('#panel pre.json');
      await json.waitFor();
      const text = await json.textContent();
      assert.match(text, /SELECT \* FROM orders WHERE id = \?/);
      await shot(page, 'activity-panel');
      await page.click('#panel [data-close-panel]');
      await page.waitForFunction(() => document.getElementById('panel').innerHTML === '');

      // Sorting by a column switches to offset pages.
      await page.click('th a[data-sort=duration]');
      await page.waitForURL((u) => u.searchParams.get('sort') === 'duration');
      await settled(page);
      assert.equal(await page.locator('.pager').count(), 1);
      assert.equal(await page.locator('#rows tr.load-more').count(), 0);

      // A shared link restores the filters.
      const link = page.url();
      const { context: c2, page: p2, problems: pr2 } = await newPage(browser);
      try {
        await signIn(p2, server.url, DEMO_ADMIN);
        await p2.goto(link);
        assert.equal(await p2.locator('#f-action').inputValue(), 'query.run');
        assert.equal(await p2.locator('#f-q').inputValue(), 'select * from ORDERS');
        assert.equal(await p2.locator('#f-range').inputValue(), '43200');
        assert.equal(await p2.locator('th[aria-sort=descending] a').getAttribute('data-sort'), 'duration');
        assertClean(pr2);
      } finally {
        await c2.close();
      }
      assertClean(problems);
    } finally {
      await context.close();
    }
  });

  test('a view is saved, re-applied and deleted', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, DEMO_ADMIN);
      await page.goto(`${server.url}/admin/activity?source=scheduler&since_minutes=10080`);
      await page.fill('#view-name', 'Scheduler this week');
      await page.click('#views button[type=submit].primary');
      const link = page.locator('#views a.view-apply', { hasText: 'Scheduler this week' });
      await link.waitFor();
      await shot(page, 'activity-views');

      await page.goto(`${server.url}/admin/activity`);
      assert.equal(await page.locator('#f-source').inputValue(), '');
      await Promise.all([page.waitForURL(/source=scheduler/), link.click()]);
      assert.equal(await page.locator('#f-source').inputValue(), 'scheduler');
      assert.equal(await page.locator('#f-range').inputValue(), '10080');

      page.once('dialog', (d) => d.accept());
      await page.locator('#views li', { hasText: 'Scheduler this week' }).locator('button.danger').click();
      await page.locator('#views a.view-apply').waitFor({ state: 'detached' });
      assertClean(problems);
    } finally {
      await context.close();
    }
  });

  test('the CSV export of a custom window has as many rows as the KPI says', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, DEMO_ADMIN);
      await page.locator('#f-since-local').waitFor();
      // A fixed window two days long, ending yesterday at 12:00 local time.
      // Its hours older than 25 h come from the hourly rollups and the rest
      // from audit_log, while the CSV reads audit_log alone: the two must agree.
      const d = new Date();
      d.setDate(d.getDate() - 1);
      const pad = (n) => String(n).padStart(2, '0');
      const day = (x) => `${x.getFullYear()}-${pad(x.getMonth() + 1)}-${pad(x.getDate())}`;
      const start = new Date(d);
      start.setDate(start.getDate() - 2);
      await page.fill('#f-since-local', `${day(start)}T12:00`);
      await page.waitForURL((u) => !!u.searchParams.get('since'));
      await settled(page);
      await page.fill('#f-until-local', `${day(d)}T12:00`);
      await page.waitForURL((u) => !!u.searchParams.get('until'));
      await settled(page);
      assert.equal(await page.locator('#f-range').inputValue(), '', 'the range shows Custom');
      const since = params(page).get('since');
      const until = params(page).get('until');
      assert.equal(new Date(until) - new Date(since), 2 * 86_400_000);
      await shot(page, 'activity-custom-range');

      const href = await page.locator('#export-csv').getAttribute('href');
      const exportUrl = new URL(href, server.url);
      const same = (a, b) => assert.equal(new Date(a).getTime(), new Date(b).getTime());
      same(exportUrl.searchParams.get('since'), since);
      same(exportUrl.searchParams.get('until'), until);
      // A real download, as the button gives it.
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
      assert.match(download.suggestedFilename(), /^audit_log_\d{8}T\d{6}Z_\d{8}T\d{6}Z\.csv$/);
      assert.equal(await download.failure(), null);
      const body = await readFile(await download.path(), 'utf8');
      const lines = body.split('\n').filter((l) => l.length > 0);
      // Demo params hold no newlines, so each record is one line.
      const rows = lines.length - 1;

      const q = new URLSearchParams({ since, until });
      const kpis = await page.request.get(`${server.url}/api/admin/observability/kpis?${q}`);
      assert.equal(kpis.status(), 200);
      const k = await kpis.json();
      assert.ok(rows > 1000, `a two-day window of demo data has many rows, got ${rows}`);
      assert.equal(rows, k.events_total);
      const shown = (await page.locator('.kpi[data-kpi=events] .kpi-value').textContent()).replace(/,/g, '');
      assert.equal(Number(shown), k.events_total, 'the card shows the same number');
      assertClean(problems);
    } finally {
      await context.close();
    }
  });
  test("times are shown in the viewer's own zone", async () => {
    // A zone with a half-hour offset, so a UTC or host-zone rendering cannot pass.
    const zone = 'Asia/Kolkata';
    const { context, page, problems } = await newPage(browser, { timezoneId: zone, locale: 'en-US' });
    try {
      await signIn(page, server.url, DEMO_ADMIN);
      const time = page.locator('#rows tr.audit-row time').first();
      await page.waitForFunction(() => document.querySelector('#rows tr.audit-row time')?.dataset.local === '1');
      const iso = await time.getAttribute('datetime');
      const expected = new Intl.DateTimeFormat('en-US', { dateStyle: 'medium', timeStyle: 'short', timeZone: zone })
        .format(new Date(iso));
      assert.equal((await time.textContent()).trim(), expected);
      assert.equal(await time.getAttribute('title'), new Date(iso).toISOString(), 'the exact UTC time on hover');
      assertClean(problems);
    } finally {
      await context.close();
    }
  });

  test('auto-refresh reloads the results every 30 s, only while ticked and the tab is visible', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await page.clock.install();
      await signIn(page, server.url, DEMO_ADMIN);
      await page.locator('#rows tr.audit-row').first().waitFor();
      let refreshes = 0;
      page.on('request', (r) => {
        const u = new URL(r.url());
        if (u.pathname === '/admin/activity' && r.headers()['hx-request'] === 'true') refreshes += 1;
      });
      const tick = async (n) => {
        for (let i = 0; i < n; i++) await page.clock.fastForward('00:31');
        await settled(page);
      };
      const hide = (hidden) =>
        page.evaluate((h) => {
          Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
          document.dispatchEvent(new Event('visibilitychange'));
        }, hidden);

      await tick(2);
      assert.equal(refreshes, 0, 'off by default');

      await page.check('#auto-refresh');
      const refreshed = page.waitForResponse((r) => new URL(r.url()).pathname === '/admin/activity' && r.status() === 200);
      await tick(1);
      await refreshed;
      await settled(page);
      assert.equal(refreshes, 1, 'one refresh after 30 s');
      assert.equal(await page.locator('#rows tr.audit-row').count(), 50, 'the table is back after the swap');

      await hide(true);
      await tick(3);
      assert.equal(refreshes, 1, 'a hidden tab does not poll');

      await hide(false);
      await tick(1);
      await page.waitForFunction(() => !document.querySelector('.htmx-request'));
      assert.ok(refreshes >= 2, 'polling resumes when the tab is visible again');
      assert.ok(await page.isChecked('#auto-refresh'), 'the toggle survives the swap');
      assertClean(problems);
    } finally {
      await context.close();
    }
  });

  test('the include-admin-reads toggle shows and hides activity.read rows', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, DEMO_ADMIN);
      const actions = () => page.locator('#rows tr.audit-row td:nth-child(2)').allTextContents();
      // Signing in opened this page, which wrote an activity.read row.
      await page.locator('#rows tr.audit-row').first().waitFor();
      assert.ok(!(await actions()).includes('activity.read'), 'hidden by default');
      await page.check('#f-self-reads');
      await page.waitForURL((u) => u.searchParams.get('include_self_reads') === 'true');
      await settled(page);
      assert.ok((await actions()).includes('activity.read'), 'shown once included');
      await shot(page, 'activity-self-reads');
      await page.uncheck('#f-self-reads');
      await page.waitForURL((u) => u.searchParams.get('include_self_reads') === null);
      await settled(page);
      assert.ok(!(await actions()).includes('activity.read'), 'hidden again');
      assertClean(problems);
    } finally {
      await context.close();
    }
  });

  test('a shared link with a filter the form has no control for shows it as a chip that removes it', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, DEMO_ADMIN);
      await page.goto(`${server.url}/admin/activity?action_prefix=auth.&since_minutes=10080`);
      const chip = page.locator('.filter-chip[data-filter=action_prefix]');
      await chip.waitFor();
      const actions = await page.locator('#rows tr.audit-row td:nth-child(2)').allTextContents();
      assert.ok(actions.length > 0 && actions.every((a) => a.trim().startsWith('auth.')), 'only auth.* rows');
      const more = await page.locator('#rows tr.load-more').getAttribute('hx-get');
      assert.match(more ?? '', /action_prefix=auth\./, 'load more keeps it');
      await shot(page, 'activity-link-filter');
      await chip.click();
      await page.waitForURL((u) => u.searchParams.get('action_prefix') === null);
      await settled(page);
      assert.equal(await chip.count(), 0);
      assert.equal(params(page).get('since_minutes'), '10080', 'the other filters stay');
      assertClean(problems);
    } finally {
      await context.close();
    }
  });
  test("a slow KPI answer for filters already left never overwrites the newer view's count", async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, DEMO_ADMIN);
      await page.locator('#rows tr.audit-row').first().waitFor();
      // The errors-only KPI fragment answers late, after the next filter change.
      let delayed = 0;
      await page.route(/\/admin\/activity\/kpis\?.*result_class=error/, async (route) => {
        delayed += 1;
        await new Promise((r) => setTimeout(r, 1500));
        await route.continue();
      });
      await page.selectOption('#f-result', 'error');
      await page.waitForURL((u) => u.searchParams.get('result_class') === 'error');
      await page.waitForFunction(() => document.querySelector('#kpis[data-kpis-pending]'));
      await page.selectOption('#f-result', '');
      await page.waitForURL((u) => u.searchParams.get('result_class') === null);
      await settled(page); // includes the late answer: #loading stays busy until it is in
      assert.equal(delayed, 1, 'the errors-only cards were asked for once');
      const q = new URLSearchParams({ since_minutes: '1440' });
      const k = await page.request.get(`${server.url}/api/admin/observability/kpis?${q}`);
      const all = (await k.json()).events_total;
      const shown = Number((await page.locator('#total').textContent()).replace(/,/g, ''));
      const card = Number((await page.locator('.kpi[data-kpi=events] .kpi-value').textContent()).replace(/,/g, ''));
      // A few rows (this page's own reads, sign-ins) may land between the two counts.
      assert.ok(Math.abs(shown - all) <= 5, `the count is the unfiltered one: shown ${shown}, all ${all}`);
      assert.equal(card, shown, 'cards and count agree');
      assert.equal(await page.locator('.kpi[data-kpi=errors].active').count(), 0, 'not the errors-only cards');
      assertClean(problems);
    } finally {
      await context.close();
    }
  });
  test('a click whose answer is slow still lands when an auto-refresh swaps the page first', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await page.clock.install();
      await signIn(page, server.url, DEMO_ADMIN);
      await page.locator('#rows tr.audit-row').first().waitFor();
      await page.check('#auto-refresh');
      await page.route(/\/admin\/activity\?.*sort=action/, async (route) => {
        await new Promise((r) => setTimeout(r, 1500));
        await route.continue();
      });
      await page.click('th a[data-sort=action]');
      // The refresh answers first and replaces the header that was clicked.
      const refreshed = page.waitForResponse(
        (r) => new URL(r.url()).pathname === '/admin/activity' && !new URL(r.url()).searchParams.get('sort'),
      );
      await page.clock.fastForward('00:31');
      await refreshed;
      await page.waitForURL((u) => u.searchParams.get('sort') === 'action');
      await settled(page);
      assert.equal(await page.locator('th[aria-sort=ascending] a').getAttribute('data-sort'), 'action');
      assert.equal(await page.locator('.pager').count(), 1, 'sorted: offset pages');
      assertClean(problems);
    } finally {
      await context.close();
    }
  });
});
