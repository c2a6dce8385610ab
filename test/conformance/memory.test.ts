/**
 * The store conformance suite of `netloop/testing` against the MemoryStore
 * (with its token index, the default; the registry's own store turns the
 * index off and resolves tokens by the id they name instead).
 */

import { test } from '../helpers/uvu.js';
import { MemoryStore } from '../../lib/store/memory-store.js';
import { storeConformance } from '../../lib/testing.js';

storeConformance({ name: 'memory', test, createStore: (clock) => new MemoryStore({ clock }) });

test.run();
