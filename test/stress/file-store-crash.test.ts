/**
 * The file store's crash loop at full length: fifty SIGKILLs of a writer under load at
 * moments drawn from a fixed seed, half in `snapshot` and half in `journal` durability;
 * after each the file parses, no record is torn and no acknowledged change is lost (see
 * test/helpers/file-store-crash.ts). The unit suite runs the same campaign with six kills.
 */
import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { crashCampaign } from '../helpers/file-store-crash.js';

test('50 kills at random moments: the file always parses, no torn record, no acknowledged change lost', async () => {
  assert.ok((await crashCampaign(50)) > 0, 'the writers acknowledged durable changes');
});

test.run();
