// Browser test of callvault's staff pages, run by TestWebUIBrowser
// (cmd/callvault/webui_browser_test.go) against a real `serve --dev`.
// Playwright drives Debian's chromium headless and logs in with the dev
// client certificates; axe-core checks every page. It prints one JSON
// object on stdout: {"failures": [...], "pages": [...], ...}; the Go test
// asserts on it and on the audit log.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing environment variable ${k}`);
  return v;
};
const base = env('CV_URL'); // https://127.0.0.1:PORT
const dev = env('CV_DEV'); // the dev directory with NAME.pem / NAME-key.pem
const patient = env('CV_PATIENT'); // 12 digits; one 20-minute call in unit A
const otherPatient = env('CV_PATIENT_B'); // one call in unit A and one in unit B
const deleteID = env('CV_DELETE_ID');
const holdID = env('CV_HOLD_ID');
const shots = process.env.CV_SHOTS || '';
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const out = { failures: [], pages: [], axe: {}, urls: [], csp: [], seek: null, channels: null, emergency: null };
const fail = (msg) => out.failures.push(msg);
const expect = (cond, msg) => { if (!cond) fail(msg); };

const browser = await chromium.launch({
  executablePath: process.env.CV_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required', '--mute-audio'],
});

async function login(who) {
  const ctx = await browser.newContext({
    ignoreHTTPSErrors: true, locale: 'sv-SE', viewport: { width: 1100, height: 900 }, acceptDownloads: true,
    clientCertificates: [{ origin: base, certPath: path.join(dev, who + '.pem'), keyPath: path.join(dev, who + '-key.pem') }],
  });
  const page = await ctx.newPage();
  page.on('request', (r) => out.urls.push(r.url()));
  page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) out.csp.push(`${who}: ${m.text()}`); });
  return { ctx, page };
}

// check runs axe on the page (WCAG 2.1 A and AA) and takes its screenshot.
async function check(page, name) {
  out.pages.push(name);
  await page.evaluate(axeSource);
  const res = await page.evaluate(() => window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
  const serious = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  out.axe[name] = res.violations.map((v) => `${v.impact}: ${v.id} (${v.nodes.length})`);
  for (const v of serious) fail(`${name}: accessibility ${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  if (shots) {
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, name + '.png'), fullPage: true });
  }
}

async function text(page) { return page.locator('main').innerText(); }

async function step(name, fn) {
  try { await fn(); } catch (e) { fail(`${name}: ${e.message.split('\n')[0]}`); }
}

// 1. A nurse finds a patient, chooses a purpose, plays and seeks.
await step('nurse', async () => {
  const { ctx, page } = await login('nurse');
  await page.goto(base + '/');
  await check(page, '01-start-nurse');
  await page.getByRole('link', { name: 'Sök samtal' }).first().click();
  const pnr = page.getByLabel('Personnummer eller samordningsnummer');
  // A wrong check digit is pointed out as it is typed.
  const wrong = patient.slice(0, 11) + String((Number(patient[11]) + 1) % 10);
  await pnr.pressSequentially(wrong.slice(0, 8) + '-' + wrong.slice(8));
  await page.getByText('Kontrollsiffran stämmer inte').waitFor({ timeout: 5000 });
  expect(await pnr.getAttribute('aria-invalid') === 'true', 'nurse: a wrong check digit does not mark the field invalid');
  await check(page, '02-search-check-digit');
  // Sent anyway, the server says the same and searches nothing.
  await page.getByLabel('Syfte').selectOption('care');
  await page.getByRole('button', { name: 'Sök', exact: true }).click();
  expect((await text(page)).includes('Kontrollsiffran i personnumret stämmer inte'), 'nurse: server does not explain the wrong check digit');
  await pnr.fill(patient.slice(0, 8) + '-' + patient.slice(8));
  await page.getByLabel('Syfte').selectOption('care');
  await page.getByRole('button', { name: 'Sök', exact: true }).click();
  await page.getByRole('heading', { name: /Samtal \(1\)/ }).waitFor();
  await check(page, '03-search-results');
  await page.getByRole('button', { name: /Lyssna/ }).first().click();
  await page.getByLabel('Syfte med att lyssna').waitFor();
  // No purpose, no audio: the form does not go (the server refuses it
  // too; tested in Go).
  await page.getByRole('button', { name: 'Fortsätt till uppspelning' }).click({ noWaitAfter: true });
  expect(await page.locator('select#syfte:invalid').count() === 1, 'nurse: the purpose is not required');
  expect(await page.locator('audio').count() === 0, 'nurse: a player was shown without a purpose');
  await check(page, '04-listen-purpose');
  await page.getByLabel('Syfte med att lyssna').selectOption('care');
  await page.getByRole('button', { name: 'Fortsätt till uppspelning' }).click();
  const audio = page.locator('audio#ljud');
  await audio.waitFor();
  await page.getByRole('button', { name: 'Spela' }).click();
  await page.waitForFunction(() => document.querySelector('audio').currentTime > 1.0, null, { timeout: 20000 });
  // Seek with the time bar to 15:00, and on with +10 s.
  await page.getByLabel('Position i samtalet').fill('900');
  await page.getByRole('button', { name: '+10 s' }).click();
  await page.waitForFunction(() => document.querySelector('audio').currentTime > 911, null, { timeout: 20000 });
  const st = await page.evaluate(() => { const a = document.querySelector('audio'); return { t: a.currentTime, d: a.duration, paused: a.paused }; });
  out.seek = st;
  expect(Math.abs(st.d - 1200) < 1, `nurse: audio duration ${st.d}, want 1200 s`);
  expect(!st.paused, 'nurse: playback stopped after seeking');
  // The caller's channel off: the nurse's alone is heard.
  await page.getByLabel('Uppringare (vänster)').uncheck();
  out.channels = await page.evaluate(() => document.getElementById('spelare').dataset.heard);
  expect(out.channels === '0,1', `nurse: the audio graph passes channels ${out.channels}, want 0,1 (caller off)`);
  await page.getByRole('button', { name: 'Pausa' }).click();
  await check(page, '05-player');
  await ctx.close();
});

// 2. nurse-b, of unit B, goes through emergency access to unit A's call.
await step('nurse-b', async () => {
  const { ctx, page } = await login('nurse-b');
  await page.goto(base + '/sok');
  await page.getByLabel('Personnummer eller samordningsnummer').fill(otherPatient);
  await page.getByLabel('Syfte').selectOption('care');
  await page.getByRole('button', { name: 'Sök', exact: true }).click();
  await page.getByText('vid andra vårdenheter').waitFor();
  const own = await page.locator('table.list tbody tr').count();
  expect(own === 1, `nurse-b: ${own} own-unit hits before emergency access, want 1`);
  await check(page, '06-search-other-units');
  await page.getByRole('button', { name: /Begär nödåtkomst/ }).click();
  await page.getByRole('heading', { name: 'Det här är nödåtkomst' }).waitFor();
  // The deliberate step: without the confirmation nothing is searched.
  await page.getByLabel('Skäl för nödåtkomst').fill('Patienten ringer igen med bröstsmärta; tidigare samtal behövs för bedömningen.');
  await check(page, '07-emergency-step');
  await page.getByRole('button', { name: 'Sök med nödåtkomst' }).click({ noWaitAfter: true });
  // The browser's own required-field check stops the form first; the
  // server refuses it too (tested in Go).
  expect(await page.locator('table.list').count() === 0, 'nurse-b: emergency search ran without the confirmation');
  await page.getByLabel(/Jag begär nödåtkomst/).check();
  await page.getByRole('button', { name: 'Sök med nödåtkomst' }).click();
  await page.getByRole('heading', { name: /Samtal \(2\)/ }).waitFor();
  expect((await text(page)).includes('nödåtkomst'), 'nurse-b: emergency hit not marked');
  await page.locator('tr', { has: page.locator('.tag') }).getByRole('button', { name: /Lyssna/ }).click();
  await page.getByRole('heading', { name: 'Nödåtkomst' }).waitFor();
  await page.getByLabel('Syfte med att lyssna').selectOption('care');
  await page.getByLabel(/Jag använder nödåtkomst/).check();
  await check(page, '08-emergency-listen');
  await page.getByRole('button', { name: 'Fortsätt till uppspelning' }).click();
  await page.locator('audio#ljud').waitFor();
  await page.getByRole('button', { name: 'Spela' }).click();
  await page.waitForFunction(() => document.querySelector('audio').currentTime > 0.5, null, { timeout: 20000 });
  out.emergency = true;
  await check(page, '09-emergency-player');
  await ctx.close();
});

// 3. The auditor: the extract, a finding marked reviewed, an incident CSV.
await step('auditor', async () => {
  const { ctx, page } = await login('auditor');
  await page.goto(base + '/granskning');
  await check(page, '10-review');
  await page.getByLabel('Personnummer eller samordningsnummer').fill(otherPatient);
  await page.getByRole('button', { name: 'Visa loggutdrag' }).click();
  await page.getByRole('heading', { name: /Loggutdrag/ }).waitFor();
  const ex = await page.locator('body').innerText();
  expect(ex.includes('Om nödåtkomst'), 'auditor: the extract does not explain the emergency access');
  out.extractRows = await page.locator('tbody tr').count();
  await check(page, '11-extract');
  await page.goBack();
  await page.getByRole('button', { name: 'Visa uppföljning' }).click();
  await page.locator('article.finding').first().waitFor();
  await check(page, '12-follow-up');
  const finding = page.locator('article.finding').first();
  const fid = await finding.locator('input[name=avvikelse]').getAttribute('value');
  out.finding = fid;
  await finding.getByLabel('Utfall').selectOption('no-action');
  await finding.getByLabel('Anteckning').fill('Kontrollerat med enhetschefen: akut bedömning.');
  await finding.getByRole('button', { name: 'Markera som granskad' }).click();
  await page.getByText('Avvikelsen är markerad som granskad.').waitFor();
  const state = await page.locator(`article.finding:has(input[value="${fid}"]) .state`).innerText();
  expect(state.startsWith('Granskad'), `auditor: finding state after marking is ${JSON.stringify(state)}`);
  await page.goto(base + '/granskning');
  await page.getByLabel('Användare (HSA-id, valfritt)').fill('SE9999990001-N0B1');
  await page.getByRole('button', { name: 'Visa rapport' }).click();
  await page.getByRole('heading', { name: 'Incidentrapport' }).waitFor();
  await check(page, '13-incident');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: /Ladda ner CSV/ }).click()]);
  const csv = readFileSync(await download.path(), 'utf8');
  out.incidentCSV = csv.split(/\r?\n/).filter((l) => l).length;
  expect(csv.includes(otherPatient.slice(0, 8) + '-' + otherPatient.slice(8)), 'auditor: the incident CSV does not name the patient nurse-b read');
  await ctx.close();
});

// 4. Records officers: a decision its registrar cannot approve; the second
// officer can; a legal hold.
await step('records', async () => {
  const { ctx, page } = await login('records');
  await page.goto(base + '/arkiv');
  await check(page, '14-records');
  await page.getByLabel('IVO:s diarienummer').fill('IVO 3.1.1-00042/2026');
  await page.getByLabel('Beslutsdatum').fill('2026-11-02');
  await page.getByLabel('SHA-256 av beslutsdokumentet').fill('9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08');
  await page.getByLabel('Inspelnings-ID, ett per rad').fill(deleteID);
  await page.getByRole('button', { name: 'Registrera beslut' }).click();
  const reg = await page.getByRole('status').innerText();
  const m = reg.match(/Beslut (\d+) är registrerat/);
  expect(m, `records: registering gave ${JSON.stringify(reg)}`);
  out.decision = m ? Number(m[1]) : null;
  await page.getByRole('button', { name: new RegExp(`Godkänn och radera enligt beslut ${out.decision}$`) }).click();
  const err = await page.getByRole('alert').innerText();
  expect(err.includes('inte godkänna ett beslut som du själv har registrerat'), `records: self-approval answered ${JSON.stringify(err)}`);
  await check(page, '15-self-approval');
  // A legal hold on another recording.
  await page.getByLabel('Inspelnings-ID', { exact: true }).fill(holdID);
  await page.getByRole('button', { name: 'Visa bevarandebeslut' }).click();
  await page.getByLabel('Referens (ärende eller beslut)').fill('Tvist 2026-77');
  await page.getByRole('button', { name: 'Sätt bevarandebeslut' }).click();
  await page.getByText(/Bevarandebeslut \d+ är satt/).waitFor();
  await check(page, '16-legal-hold');
  await ctx.close();
  const two = await login('records-2');
  await two.page.goto(base + '/arkiv');
  await two.page.getByRole('button', { name: new RegExp(`Godkänn och radera enligt beslut ${out.decision}$`) }).click();
  const ok = await two.page.getByRole('status').innerText();
  expect(ok.includes(`Beslut ${out.decision} är godkänt`), `records-2: approval answered ${JSON.stringify(ok)}`);
  await two.ctx.close();
});

// 5. The administrator sees the system and no patient data.
await step('admin', async () => {
  const { ctx, page } = await login('admin');
  await page.goto(base + '/admin');
  await page.getByRole('heading', { name: 'Användare och system' }).waitFor();
  await check(page, '17-admin');
  const html = await page.content();
  out.adminPNR = (html.match(/\b(19|20)\d{6}-?\d{4}\b/g) || []).length;
  out.adminIDs = (html.match(/\b[0-9a-f]{32}\b/g) || []).length;
  out.adminPhones = (html.match(/\+467\d{8}|07\d-?\d{7}/g) || []).length;
  expect(html.includes('SE9999990001-N0A1'), 'admin: the user list is missing');
  // The search page is not the admin's.
  const r = await page.goto(base + '/sok');
  expect(r.status() === 403, `admin: /sok answered ${r.status()}, want 403`);
  await ctx.close();
});

await browser.close();
process.stdout.write(JSON.stringify(out) + '\n');
