import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { statusPageHtml } from '../../../lib/ops/status-page.js';

test('the status page is self-contained: no address outside itself, no external script, style, image or font; the nonce on its script and style; the title escaped', () => {
  const html = statusPageHtml({ title: '<b>chat</b> & "co"', nonce: 'abc123', intervalMs: 1000 });
  // The SVG namespace is a name (createElementNS), never fetched.
  assert.not.match(html.replaceAll("'http://www.w3.org/2000/svg'", ''), /https?:\/\//, 'no absolute address');
  assert.not.match(html, /\ssrc=/, 'no src attribute');
  assert.not.match(html, /<link(?![^>]*href="data:,")/, 'no link but the empty data: icon');
  assert.not.match(html, /@import|url\(/, 'no stylesheet import or url()');
  assert.not.match(html, /\sstyle="/, 'no inline style attribute (the CSP allows only the nonced stylesheet)');
  assert.match(html, /<script nonce="abc123">/);
  assert.match(html, /<style nonce="abc123">/);
  assert.is((html.match(/<script/g) ?? []).length, 1);
  assert.match(html, /&#60;b&#62;chat&#60;\/b&#62; &#38; &#34;co&#34;/);
  assert.not.match(html, /<b>chat/);
  assert.match(html, /new EventSource\('events'\)/, 'the feed is its own relative /events');
  assert.match(html, /data-interval="1000"/);
  assert.not.match(html, /innerHTML/, 'values are written as text');
});

test.run();
