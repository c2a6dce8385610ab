/**
 * The store conformance suite of `netloop/testing` against the FileStore, in
 * both durability modes, each in a temporary folder of its own, in virtual
 * time (its saves are scheduled on the suite's clock).
 */

import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from '../helpers/uvu.js';
import { FileStore } from '../../lib/store/file/file-store.js';
import type { SessionStore } from '../../lib/store/contract.js';
import { ManualScheduler, storeConformance } from '../../lib/testing.js';

for (const durability of ['snapshot', 'journal'] as const) {
  const folders = new WeakMap<SessionStore, string>();
  storeConformance({
    name: `file (${durability})`,
    test,
    async createStore(clock) {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'netloop-conformance-'));
      const scheduler = new ManualScheduler(clock);
      const store = await FileStore.open({ path: path.join(dir, 'sessions.json'), durability, clock, scheduler });
      folders.set(store, dir);
      return store;
    },
    async disposeStore(store) {
      const dir = folders.get(store);
      if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true });
    },
  });
}

test.run();
