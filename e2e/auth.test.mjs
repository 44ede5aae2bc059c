// Signing in and out, as an admin and as an analyst, in a real browser.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  api,
  assertClean,
  launchBrowser,
  newPage,
  passwordToken,
  shot,
  signIn,
  startServer,
} from './lib.mjs';

const ADMIN = { email: 'root@example.com', password: 'e2e-admin-password' };
const ANALYST = { email: 'ana.lyst@example.com', password: 'e2e-analyst-password' };
const ADMIN_LINKS = ['Audit log', 'Telemetry', 'Sessions', 'Users', 'Feedback'];
const ALL_LINKS = [...ADMIN_LINKS, 'My account'];

describe('signing in', () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({
      env: { GLASSBOX_ADMIN_EMAIL: ADMIN.email, GLASSBOX_ADMIN_PASSWORD: ADMIN.password },
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  const navLinks = (page) =>
    page.locator('nav.main-nav a').evaluateAll((as) => as.map((a) => a.textContent.trim()));

  test('an admin signs in, sees the whole navigation and the users, and signs out', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, ADMIN);
      assert.equal(new URL(page.url()).pathname, '/admin/activity');
      assert.deepEqual(await navLinks(page), ALL_LINKS);
      const label = page.locator('.user-label');
      await label.waitFor();
      assert.ok((await label.textContent()).trim().length > 0, 'the user label is not empty');
      assert.equal(await label.getAttribute('title'), ADMIN.email);
      await shot(page, 'signed-in-admin');

      await page.click('nav.main-nav a:text-is("Users")');
      await page.waitForURL('**/admin/users');
      const row = page.locator('table.users-table tbody tr', { hasText: ADMIN.email });
      await row.first().waitFor();
      assert.equal(await row.count(), 1, 'the admin appears once in the users table');
      await shot(page, 'users');

      await Promise.all([page.waitForURL('**/login'), page.click('#sign-out')]);
      assert.equal(new URL(page.url()).pathname, '/login');
      assert.equal(await page.locator('nav.main-nav').count(), 0, 'no navigation once signed out');

      await page.goto(`${server.url}/admin/users`);
      const url = new URL(page.url());
      assert.equal(url.pathname, '/login');
      assert.equal(url.searchParams.get('next'), '/admin/users');
      assertClean(problems);
    } finally {
      await context.close();
    }
  });

  test('a wrong password shows an error and stays on the sign-in page', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await page.goto(`${server.url}/login`);
      await page.fill('input[name=email]', ADMIN.email);
      await page.fill('input[name=password]', 'not-the-password');
      await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
      assert.equal(new URL(page.url()).pathname, '/login');
      const error = page.locator('#login-error');
      await error.waitFor();
      assert.ok((await error.textContent()).trim().length > 0, 'the error says something');
      assert.equal(await page.inputValue('input[name=email]'), ADMIN.email, 'the email is kept');
      assert.equal(await page.inputValue('input[name=password]'), '', 'the password is not');
      assert.equal(await page.locator('nav.main-nav').count(), 0);
      await shot(page, 'login-error');
      assertClean(problems, { allowHttp: [/^401 POST .*\/login$/] });
    } finally {
      await context.close();
    }
  });

  test('an analyst signs in to their account and creates a token that works', async () => {
    const adminToken = await passwordToken(server.url, ADMIN.email, ADMIN.password);
    const created = await api(server.url, 'POST', '/api/admin/users', {
      token: adminToken,
      body: { email: ANALYST.email, password: ANALYST.password, role: 'analyst' },
    });
    assert.ok([200, 201].includes(created.status), `create analyst: ${created.status} ${JSON.stringify(created.body)}`);

    const { context, page, problems } = await newPage(browser);
    try {
      await signIn(page, server.url, ANALYST);
      assert.equal(new URL(page.url()).pathname, '/me');
      assert.deepEqual(await navLinks(page), ['My account']);
      assert.equal(await page.locator('.user-label').getAttribute('title'), ANALYST.email);

      const name = 'e2e laptop';
      await page.fill('#my-tokens form input[name=name]', name);
      await page.click('#my-tokens form button:text-is("Create token")');
      const fresh = page.locator('#new-token');
      await fresh.waitFor();
      const token = (await fresh.textContent()).trim();
      assert.ok(token.length >= 20, `a token is shown: ${JSON.stringify(token)}`);
      await page.locator('.tokens-table tbody tr', { hasText: name }).first().waitFor();
      await shot(page, 'me-token');

      const listed = await api(server.url, 'GET', '/api/me/tokens', { token });
      assert.equal(listed.status, 200, JSON.stringify(listed.body));
      assert.match(listed.headers.get('content-type') || '', /application\/json/);
      const names = listed.body.tokens.map((t) => t.name);
      assert.ok(names.includes(name), `the new token is listed: ${JSON.stringify(names)}`);
      assertClean(problems);
    } finally {
      await context.close();
    }
  });
});

describe('sign-in throttling', () => {
  // Its own server: the throttle also counts failures per IP, and every test
  // comes from 127.0.0.1.
  let server;
  let browser;

  before(async () => {
    server = await startServer({
      env: { GLASSBOX_ADMIN_EMAIL: ADMIN.email, GLASSBOX_ADMIN_PASSWORD: ADMIN.password },
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('after five wrong passwords the sign-in page asks to wait, even for the right one', async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      const attempt = async (password) => {
        await page.goto(`${server.url}/login`);
        await page.fill('input[name=email]', ADMIN.email);
        await page.fill('input[name=password]', password);
        const [res] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
        return res.status();
      };
      for (let i = 0; i < 5; i++) await attempt('not-the-password');
      assert.equal(await attempt(ADMIN.password), 429);
      assert.equal(new URL(page.url()).pathname, '/login');
      const error = page.locator('#login-error');
      await error.waitFor();
      assert.match(await error.textContent(), /Too many failed sign-ins\. Try again in (\d+ seconds|about \d+ minutes?)\./);
      assert.equal(await page.locator('input[name=password]').count(), 1, 'the form is still there');
      assert.equal(await page.locator('nav.main-nav').count(), 0, 'not signed in');
      await shot(page, 'login-throttled');
      assertClean(problems, { allowHttp: [/^(401|429) POST .*\/login$/] });
    } finally {
      await context.close();
    }
  });
});
