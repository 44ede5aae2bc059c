// The Sessions pages on demo data, in a real browser: the list opens
// error-heavy first, the viewer steps through every error with the button
// and `n`, opens collapsed outputs and subagent groups, scrolls a large
// transcript to its end; downloads are byte-exact; analysts see their own.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ARTIFACTS, DEMO_ADMIN, DEMO_ANALYST, assertClean, launchBrowser, newPage, shot, signIn, startServer } from './lib.mjs';

const WINDOW = 'since_minutes=525600&anchor=started';

describe('the sessions pages', () => {
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

  /** Rows of the sessions API, as the signed-in page's cookie allows. */
  const rows = async (page, query) => {
    const res = await page.request.get(`${server.url}/api/admin/sessions/list?${WINDOW}&limit=200&${query}`);
    assert.equal(res.status(), 200);
    return (await res.json()).rows;
  };

  test('the list opens error-heavy first and Next error / n visit every error of the worst session', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, DEMO_ADMIN);
      await page.goto(`${server.url}/admin/sessions?${WINDOW}`);
      await page.locator('#sessions-table tbody tr').first().waitFor();
      assert.equal(await page.locator('section.kpis .kpi').count(), 6);
      assert.ok((await page.locator('svg#heatmap a[data-cell]').count()) > 0, 'the heatmap has cells');
      await shot(page, 'sessions-list');
      const worst = (await rows(page, 'sort=tool_errors:desc'))[0];
      const first = await page.locator('#sessions-table tbody tr').first().getAttribute('data-session');
      assert.equal(first, worst.session_file, 'the page opens on the error-heaviest session');
      assert.ok(worst.tool_errors > 0);

      // A heatmap cell filters the table to its type and week.
      const cell = page.locator('svg#heatmap a[data-cell]').first();
      const [type] = (await cell.getAttribute('data-cell')).split(':');
      await cell.click();
      await page.waitForURL((u) => u.searchParams.get('finding_type') === type);
      await page.locator('#sessions-table tbody tr, .empty-state').first().waitFor();
      assert.equal(await page.locator('#f-finding').inputValue(), type);

      // Open the worst session from the list.
      await page.goto(`${server.url}/admin/sessions?${WINDOW}`);
      await page.locator('#sessions-table tbody tr .session-link').first().click();
      await page.waitForURL((u) => u.pathname === `/admin/sessions/${worst.session_file}`);
      const marks = JSON.parse(await page.locator('#next-error').getAttribute('data-marks'));
      assert.ok(marks.length >= worst.tool_errors, `${marks.length} marks for ${worst.tool_errors} errors`);
      const current = () => page.locator('.turn.current').first().getAttribute('data-line');
      await page.click('#next-error');
      await page.waitForFunction(() => document.querySelector('.turn.current'));
      assert.equal(Number(await current()), marks[0]);
      await shot(page, 'sessions-viewer-first-error');
      for (const m of marks.slice(1)) {
        await page.keyboard.press('n');
        await page.waitForFunction((line) => document.querySelector('.turn.current')?.dataset.line === String(line), m);
      }
      // `n` past the last wraps to the first; `p` goes back to the last.
      await page.keyboard.press('n');
      await page.waitForFunction((line) => document.querySelector('.turn.current')?.dataset.line === String(line), marks[0]);
      await page.keyboard.press('p');
      await page.waitForFunction((line) => document.querySelector('.turn.current')?.dataset.line === String(line), marks.at(-1));
      const errorTurns = await page.locator('.turn.is-error').count();
      assert.ok(errorTurns > 0, 'error results are marked');
      assert.ok((await page.locator('#audit-trail tr').count()) > 0, 'the audit trail shows the view');

      // The raw download is the file on disk, byte for byte.
      const href = await page.locator('#download').getAttribute('href');
      const res = await page.request.get(server.url + href);
      assert.equal(res.status(), 200);
      const onDisk = await readFile(path.join(server.dataDir, 'user_sessions', worst.session_file));
      assert.ok(Buffer.from(await res.body()).equals(onDisk), 'the JSONL download equals the file');
      assertClean(problems);
    } finally {
      await context.close();
    }
  });

  test('collapsed tool output, a subagent group, and a large transcript scrolled to its end', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, DEMO_ADMIN);
      const all = await rows(page, 'sort=started_at:desc');
      const withAgents = all.find((r) => r.subagent_dispatches > 0);
      assert.ok(withAgents, 'the demo has a session with subagents');
      await page.goto(`${server.url}/admin/sessions/${withAgents.session_file}`);
      // Scroll until a subagent group is on the page (they load as you scroll).
      for (let i = 0; i < 200 && !(await page.locator('details[data-subagent]').count()); i++) {
        if (await page.locator('#end-of-transcript').count()) break;
        await page.locator('.more').last().scrollIntoViewIfNeeded().catch(() => {});
        await page.waitForTimeout(100);
      }
      const group = page.locator('details[data-subagent]').first();
      assert.ok(await group.count(), 'a subagent group is rendered');
      await group.locator(':scope > summary').click();
      assert.equal(await group.evaluate((d) => d.open), true);
      assert.ok((await group.locator('.turn').count()) > 0);
      await shot(page, 'sessions-subagent-group');

      // A collapsed tool output opens (and fetches the rest when it was cut).
      const candidates = page.locator('details.tool-result:not([open])');
      if (await candidates.count()) {
        // Pin it: once open it no longer matches `:not([open])`.
        await candidates.first().evaluate((d) => d.setAttribute('data-picked', ''));
        const collapsed = page.locator('details.tool-result[data-picked]');
        await collapsed.locator(':scope > summary').click();
        assert.equal(await collapsed.evaluate((d) => d.open), true);
        const more = collapsed.locator('button.load-full');
        if (await more.count()) {
          const before = (await collapsed.textContent()).length;
          await more.click();
          await page.waitForFunction((b) => {
            const d = document.querySelector('details.tool-result[data-picked]');
            return d && d.textContent.length > b;
          }, before);
        }
        await shot(page, 'sessions-tool-output');
      }

      // The largest transcript, scrolled to its end through `revealed` loads.
      const largest = all.reduce((a, b) => (b.bytes > a.bytes ? b : a));
      await page.goto(`${server.url}/admin/sessions/${largest.session_file}`);
      for (let i = 0; i < 400 && !(await page.locator('#end-of-transcript').count()); i++) {
        await page.mouse.wheel(0, 20000);
        await page.waitForTimeout(50);
      }
      assert.ok(await page.locator('#end-of-transcript').count(), 'the end of the transcript was reached');
      const lastLine = await page.locator('.turn').last().getAttribute('data-line');
      assert.ok(Number(lastLine) > 0);
      // The viewport only: a full-page capture of a whole transcript is huge.
      await page.screenshot({ path: path.join(ARTIFACTS, 'sessions-large-transcript-end.png') });
      assertClean(problems);
    } finally {
      await context.close();
    }
  });

  test("a user's ZIP holds their files and an analyst sees only their own sessions", async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, DEMO_ADMIN);
      const analystRow = (await rows(page, `username=${encodeURIComponent(DEMO_ANALYST.email)}`))[0];
      assert.ok(analystRow && analystRow.user_id, 'the demo analyst has sessions');
      await page.goto(`${server.url}/admin/users/${analystRow.user_id}`);
      await page.locator('#user-sessions').waitFor();
      await shot(page, 'sessions-user-tab');
      const zipHref = await page.locator('#download-all').getAttribute('href');
      const res = await page.request.get(server.url + zipHref);
      assert.equal(res.status(), 200);
      const zip = Buffer.from(await res.body());
      assert.equal(zip.subarray(0, 4).toString('binary'), 'PK\x03\x04');
      const files = await page.locator('#user-sessions tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.file));
      for (const f of files) assert.ok(zip.includes(Buffer.from(f)), `${f} is in the ZIP`);
      await page.locator('#tab-activity').click();
      await page.locator('#user-activity').waitFor();
      assertClean(problems);
    } finally {
      await context.close();
    }
    const analyst = await newPage(browser);
    try {
      await signIn(analyst.page, server.url, DEMO_ANALYST);
      await analyst.page.goto(`${server.url}/me/sessions?${WINDOW}`);
      await analyst.page.locator('#sessions-table tbody tr').first().waitFor();
      const users = await analyst.page.locator('#sessions-table tbody tr td:nth-child(4)').allTextContents();
      assert.ok(users.length > 0 && users.every((u) => u.trim() === DEMO_ANALYST.email), 'only their own');
      await shot(analyst.page, 'sessions-analyst');
      const res = await analyst.page.request.get(`${server.url}/admin/sessions`);
      assert.equal(res.status(), 403);
      assertClean(analyst.problems, { allowHttp: [/^403 /] });
    } finally {
      await analyst.context.close();
    }
  });
});
