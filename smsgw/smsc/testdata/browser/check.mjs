// Drives the SMSC simulator page in Debian's chromium for TestBrowser
// (../../browser_test.go), which starts the simulator and passes, as one
// JSON argument: url, screenshot, chromium, and the phone numbers to use.
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2]);
const T = 10_000;
const t0 = Date.now();
const step = (s) => console.log(`check: ${((Date.now() - t0) / 1000).toFixed(1)}s`, s);

function fail(msg) {
  throw new Error(msg);
}

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, deviceScaleFactor: 1 });
  const problems = [];
  page.on('dialog', (d) => { problems.push('dialog: ' + d.message()); d.dismiss(); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) problems.push('console: ' + m.text());
  });

  await page.goto(cfg.url);
  const card = (n) => page.locator(`article.phone[data-number="${n}"]`);
  const msg = (n, text) => card(n).locator('li.msg', { hasText: text });
  const choose = (name, value) => page.locator(`#carrier label:has(input[name="${name}"][value="${value}"])`).click();
  const badge = async (n, text, state) => {
    await msg(n, text).locator('.badge', { hasText: new RegExp('^' + state + '$') }).waitFor({ timeout: T });
  };

  step('the phone shows the gateway\'s message as delivered');
  await badge(cfg.phone, 'table for two', 'DELIVRD');
  await badge(cfg.phone, 'Reply to this message', 'DELIVRD');
  const whole = await msg(cfg.phone, 'Reply to this message').locator('.bubble').textContent();
  if (!whole.startsWith('Reminder: ')) fail('concatenated message not shown whole: ' + whole);
  if (!(await msg(cfg.phone, 'Reply to this message').locator('.parts').textContent()).includes('2/2')) {
    fail('parts count missing');
  }

  step('the carrier selector switches to failed');
  await choose('outcome', 'failed');
  await page.locator('#summary', { hasText: 'UNDELIV' }).waitFor({ timeout: T });
  const conf = await (await page.request.get(cfg.url + 'config')).json();
  if (conf.outcome !== 'failed') fail('config after selecting failed: ' + JSON.stringify(conf));

  step('a new submit shows up failed without a reload');
  let r = await page.request.post(cfg.url + 'test/submit', { form: { to: cfg.failPhone, text: 'Your parcel is out for delivery today.' } });
  if (!r.ok()) fail('test/submit: ' + (await r.text()));
  await badge(cfg.failPhone, 'parcel', 'UNDELIV');

  step('a phone replies through its compose form');
  const compose = card(cfg.phone).locator('form.compose');
  await compose.locator('textarea').fill(cfg.reply);
  await compose.locator('button').click();
  await compose.locator('.status', { hasText: 'Sent' }).waitFor({ timeout: T });
  await badge(cfg.phone, cfg.reply, 'sent');

  step('a slow carrier leaves the receipt pending');
  await choose('outcome', 'delivered');
  await page.locator('#summary', { hasText: 'DELIVRD at once' }).waitFor({ timeout: T });
  await choose('receipt_delay', '10s');
  await page.locator('#summary', { hasText: 'after 10s' }).waitFor({ timeout: T });
  r = await page.request.post(cfg.url + 'test/submit', { form: { to: cfg.phone, text: '8:30 works. See you then!' } });
  if (!r.ok()) fail('test/submit: ' + (await r.text()));
  await badge(cfg.phone, '8:30 works', 'pending');

  step('a new phone texts the gateway from the general form');
  const any = page.locator('#compose-any');
  await any.locator('input[name=from]').fill(cfg.newPhone);
  await any.locator('textarea').fill('Is this the shop on Main Street?');
  await any.locator('button').click();
  await badge(cfg.newPhone, 'Main Street', 'sent');

  if (problems.length) fail(problems.join('\n'));
  await page.screenshot({ path: cfg.screenshot, fullPage: true });
  step('screenshot ' + cfg.screenshot);

  // After the screenshot, which is the README's picture of the page.
  step('markup in a message is shown as text');
  r = await page.request.post(cfg.url + 'test/submit', { form: { to: cfg.markupPhone, text: cfg.markupText } });
  if (!r.ok()) fail('test/submit: ' + (await r.text()));
  await msg(cfg.markupPhone, 'not bold').waitFor({ timeout: T });
  const shown = await msg(cfg.markupPhone, 'not bold').locator('.bubble').textContent();
  if (shown !== cfg.markupText) fail(`markup message shown as ${JSON.stringify(shown)}`);
  const injected = await page.evaluate(() => ({
    pwned: window.pwned,
    elements: document.querySelectorAll('.thread script, .thread b, .thread img').length,
  }));
  if (injected.pwned !== undefined || injected.elements !== 0) fail('markup was interpreted: ' + JSON.stringify(injected));
  if (problems.length) fail(problems.join('\n'));
} finally {
  await browser.close();
}
