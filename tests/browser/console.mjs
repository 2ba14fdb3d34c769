// The console in a real browser: Debian's Chromium driven by playwright-core. Run by
// crates/tutti/tests/browser.rs, which starts Tutti with stand-in vendors, makes the world these steps need (a
// held message, a dead letter, a profile with a hostile name) and passes it in the environment:
//
//   TUTTI_URL          the server
//   TUTTI_PASSWORD     every person's password; the people are admin@, approver@, marketer@ and viewer@shop.vn
//   TUTTI_HOSTILE      the id of the profile whose name is markup
//   TUTTI_DEAD_SEQ     the dead letter's sequence number
//   TUTTI_SCREENSHOTS  where to write a screenshot of each page (docs/console when refreshing the docs)
//
// Prints one line per step; exits non-zero with the reason at the first step that fails.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const url = process.env.TUTTI_URL;
const password = process.env.TUTTI_PASSWORD;
const hostile = process.env.TUTTI_HOSTILE;
const deadSeq = process.env.TUTTI_DEAD_SEQ;
const shots = process.env.TUTTI_SCREENSHOTS;
for (const [name, value] of Object.entries({ url, password, hostile, deadSeq, shots })) {
  assert.ok(value, `${name} is not set`);
}
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  // As root, with this machine's closed network: no sandbox, and none of Chromium's own calls out.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});

/** Every console error, failed page script and dialog, by page, so a step can say none happened. */
const troubles = [];

async function signedIn(email, lang = 'en') {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: lang,
    timezoneId: 'Asia/Ho_Chi_Minh' });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') troubles.push(`${page.url()}: console: ${m.text()}`); });
  page.on('pageerror', (e) => troubles.push(`${page.url()}: script error: ${e.message}`));
  page.on('dialog', async (d) => { troubles.push(`${page.url()}: a dialog opened: ${d.message()}`); await d.dismiss(); });
  await page.goto(`${url}/sign-in`);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL(`${url}/`), page.click('form.sign-in button[type=submit]')]);
  return { context, page };
}

async function visit(page, path, shot) {
  const response = await page.goto(`${url}${path}`);
  assert.equal(response.status(), 200, `${path} answered ${response.status()}`);
  if (shot) await page.screenshot({ path: join(shots, `${shot}.png`), fullPage: true });
  return response;
}

function step(name) { console.log(`ok: ${name}`); }

function noTroubles(where) {
  assert.deepEqual(troubles, [], `${where}: ${troubles.join('; ')}`);
}

// An approver sees every page, in English; each page's screenshot for docs/console.md.
const approver = await signedIn('approver@shop.vn');
for (const [path, shot] of [['/', 'overview-en'], ['/flows', 'flows-en'], ['/flows/personal-thanks', 'flow-en'],
  ['/segments', 'segments-en'], ['/segments/pro', 'segment-en'], ['/broadcasts', 'broadcasts-en'],
  ['/profiles', 'profiles-en'], [`/profiles/${hostile}`, 'profile-en'], ['/deliveries', 'deliveries-en'],
  ['/approvals', 'approvals-en'], ['/creatives', 'creatives-en'], ['/conversations', 'conversations-en'], ['/copilot', 'copilot-en'],
  ['/settings', 'settings-en']]) {
  await visit(approver.page, path, shot);
}
noTroubles('the pages');
step('every page renders with no console error');

// The hostile name is text: shown as written, no image element made of it, no dialog.
await visit(approver.page, `/profiles/${hostile}`);
const traits = await approver.page.locator('table.traits').innerText();
assert.ok(traits.includes('<img src=x onerror=alert(1)>'), `the name is shown as text: ${traits}`);
assert.equal(await approver.page.locator('img').count(), 0, 'no element made from the trait');
noTroubles('the hostile profile');
step('a hostile trait value renders as text');

// Approve the held message, edited.
await visit(approver.page, '/approvals');
const edited = 'Cảm ơn chị Lan đã đặt hàng. Hẹn gặp lại chị!';
await approver.page.locator('article.approval form[action$="/approve"] textarea[name=body]').first().fill(edited);
await Promise.all([approver.page.waitForURL(/done=approved/),
  approver.page.locator('article.approval form[action$="/approve"] button').first().click()]);
assert.ok((await approver.page.locator('.notice').innerText()).length > 0);
step('an approver approves a held message');

// A marketer edits a flow with a mistake and sees it at its line; then previews the flow as a profile.
const marketer = await signedIn('marketer@shop.vn');
await visit(marketer.page, '/flows/personal-thanks');
const source = await marketer.page.locator('textarea[name=source]').inputValue();
const broken = source.replace('action: webhook.post', 'action: webhook.psot');
const brokenLine = broken.split('\n').findIndex((l) => l.includes('webhook.psot')) + 1;
await marketer.page.locator('textarea[name=source]').fill(broken);
await marketer.page.click('button[name=intent][value=save]');
const marked = marketer.page.locator('ol.source li.bad');
assert.equal(await marked.count(), 1, 'one line is marked');
assert.equal(await marked.getAttribute('value'), String(brokenLine));
assert.ok((await marked.innerText()).includes(`${brokenLine}:`), await marked.innerText());
await marketer.page.screenshot({ path: join(shots, 'flow-problem-en.png'), fullPage: true });
step('a flow edited with a mistake shows it at its line');

await visit(marketer.page, '/flows/personal-thanks');
await marketer.page.fill('input[name=profile]', 'user_id:lan');
await marketer.page.click('button[name=intent][value=preview]');
const preview = marketer.page.locator('section.preview');
await preview.waitFor();
const played = await preview.innerText();
assert.ok(played.includes('approval_requested') || played.includes('action'), played);
await marketer.page.screenshot({ path: join(shots, 'flow-preview-en.png'), fullPage: true });
noTroubles('the flow editor');
step('a flow previewed as a profile');

// The marketer replays the dead letter.
await visit(marketer.page, '/deliveries?outcome=dead');
await marketer.page.check(`input[name=seq][value="${deadSeq}"]`);
await Promise.all([marketer.page.waitForURL(/replayed=1/), marketer.page.click('#replay button:not([name])')]);
step('a dead letter replayed');

// The copilot: a marketer makes a plan of a goal in Vietnamese and changes it in words; an approver approves it.
await visit(marketer.page, '/copilot');
await marketer.page.fill('textarea[name=goal]',
  'Kéo lại khách VIP lâu không mua ở Hà Nội, ngân sách 50 triệu, email và Zalo, trong hai tuần');
await Promise.all([marketer.page.waitForURL(/copilot\?plan=/), marketer.page.click('form.goal button')]);
const planned = await marketer.page.locator('section.plan').innerText();
assert.ok(planned.includes('Hà Nội') && planned.includes('50,000,000 VND'), planned);
assert.ok(await marketer.page.locator('ul.assumptions li').count() >= 4, 'the assumptions are listed');
assert.equal(await marketer.page.locator('form[action$="/approve"]').count(), 0, 'a marketer has no approve form');
await marketer.page.screenshot({ path: join(shots, 'copilot-plan-en.png'), fullPage: true });
await marketer.page.fill('input[name=change]', 'only customers who bought twice');
await Promise.all([marketer.page.waitForURL(/copilot\?plan=/), marketer.page.click('form.change button')]);
assert.ok((await marketer.page.locator('section.plan h2').innerText()).includes('v2'));
await approver.page.goto(marketer.page.url());
await Promise.all([approver.page.waitForURL(/copilot\?plan=/),
  approver.page.click('form[action$="/approve"] button')]);
assert.equal(await approver.page.locator('section.plan .status').innerText(), 'approved');
noTroubles('the copilot');
step('a plan made, changed in words and approved');

// A viewer sees no approve button, and the route refuses them even with their own CSRF token.
const viewer = await signedIn('viewer@shop.vn');
await visit(viewer.page, '/approvals');
assert.equal(await viewer.page.locator('form[action$="/approve"]').count(), 0, 'no approve form for a viewer');
const csrf = await viewer.page.locator('input[name=csrf]').first().inputValue();
const refused = await viewer.context.request.post(`${url}/approvals/any-run/approve`, { form: { csrf } });
assert.equal(refused.status(), 403);
step('a viewer cannot see the approve button nor call its route');

// An admin's pages, the audit log and the settings with people; and the pages in Vietnamese and Chinese.
const admin = await signedIn('admin@shop.vn');
await visit(admin.page, '/audit', 'audit-en');
assert.ok((await admin.page.locator('table.audit').innerText()).includes('approver@shop.vn'));
await visit(admin.page, '/settings', 'settings-admin-en');
const vi = await signedIn('admin@shop.vn', 'vi-VN');
for (const [path, shot] of [['/', 'overview-vi'], ['/flows/personal-thanks', 'flow-vi'], [`/profiles/${hostile}`, 'profile-vi'],
  ['/approvals', 'approvals-vi'], ['/deliveries', 'deliveries-vi'], ['/settings', 'settings-vi'], ['/audit', 'audit-vi']]) {
  await visit(vi.page, path, shot);
}
assert.ok((await vi.page.locator('h1').innerText()).includes('Nhật ký'), 'the audit log in Vietnamese');
const zh = await signedIn('admin@shop.vn', 'zh-CN');
await visit(zh.page, '/', 'overview-zh');
assert.ok((await zh.page.locator('h1').innerText()).includes('概览'));
noTroubles('the admin pages');
step('the admin pages, in three languages');

await browser.close();
