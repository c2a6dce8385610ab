/**
 * Local membership: rooms and users index the same clients both ways, a
 * room or user disappears with its last member, forgetting a client removes
 * it everywhere at once, and the per-client room limit is a coded error.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { Server } from '../../../lib/reactor/server.js';
import type { Client } from '../../../lib/reactor/client.js';
import { ErrorCode } from '../../../lib/core/errors.js';
import { Membership } from '../../../lib/cluster/membership.js';
import { connectRaw, until } from '../../helpers/net.js';
import { throwsCode } from '../../helpers/ltv.js';

async function clients(n: number): Promise<{ list: Client[]; close: () => Promise<void> }> {
  const loop = new EventLoop();
  const server = await new Server(loop, { port: 0 }).listen();
  const list: Client[] = [];
  server.on('connection', (c) => list.push(c));
  const sockets = await Promise.all(Array.from({ length: n }, () => connectRaw(server.port)));
  await until(() => list.length === n, 'the clients');
  return {
    list,
    close: async () => {
      for (const s of sockets) s.destroy();
      await loop.close();
    },
  };
}

test('join, leave, users: both indexes agree; empty rooms and users disappear; counts follow', async () => {
  const { list, close } = await clients(3);
  try {
    const [a, b, c] = list as [Client, Client, Client];
    const m = new Membership(10);
    assert.ok(m.join(a, 'r'));
    assert.not.ok(m.join(a, 'r'), 'joining twice is nothing');
    m.join(b, 'r');
    m.join(b, 's');
    m.setUser(c, 'u');
    m.setUser(b, 'u');
    assert.equal([...m.room('r')!], [a, b]);
    assert.equal(m.roomsOf(b), ['r', 's']);
    assert.equal([...m.user('u')!], [c, b]);
    assert.ok(m.inAny(b, ['x', 's']));
    assert.not.ok(m.inAny(c, ['r', 's']));
    assert.equal(m.counts(), { rooms: 2, members: 3, memberships: 3, users: 1 });
    assert.ok(m.leave(a, 'r'));
    assert.not.ok(m.leave(a, 'r'));
    assert.equal(m.counts(), { rooms: 2, members: 2, memberships: 2, users: 1 });
    m.setUser(b, 'v');
    assert.equal([...m.user('u')!], [c]);
    assert.equal(m.userOf(b), 'v');
    m.setUser(c, null);
    assert.is(m.user('u'), undefined, 'a user with no connection is gone');
    assert.is(m.leaveAll(b), 2);
    assert.is(m.room('r'), undefined);
    assert.equal(m.counts(), { rooms: 0, members: 1, memberships: 0, users: 1 });
    m.setUser(b, null);
    assert.equal(m.counts(), { rooms: 0, members: 0, memberships: 0, users: 0 });
  } finally {
    await close();
  }
});

test('forget removes a client from every room and its user at once', async () => {
  const { list, close } = await clients(2);
  try {
    const [a, b] = list as [Client, Client];
    const m = new Membership(100);
    for (let i = 0; i < 50; i++) m.join(a, `room-${i}`);
    m.join(b, 'room-0');
    m.setUser(a, 'alice');
    m.forget(a);
    assert.equal(m.counts(), { rooms: 1, members: 1, memberships: 1, users: 0 });
    assert.equal([...m.room('room-0')!], [b]);
    assert.equal(m.roomsOf(a), []);
    m.forget(a);
  } finally {
    await close();
  }
});

test('a client in maxRoomsPerClient rooms cannot join another: NETLOOP_ROOM_LIMIT, nothing changed', async () => {
  const { list, close } = await clients(1);
  try {
    const a = list[0]!;
    const m = new Membership(2);
    m.join(a, 'x');
    m.join(a, 'y');
    const err = throwsCode(() => m.join(a, 'z'), ErrorCode.ROOM_LIMIT);
    assert.is(err.details['max'], 2);
    assert.equal(m.roomsOf(a), ['x', 'y']);
    assert.is(m.room('z'), undefined);
    const fresh = new Membership(1);
    fresh.join(a, 'x');
    throwsCode(() => fresh.join(a, 'y'), ErrorCode.ROOM_LIMIT);
    assert.equal(fresh.counts(), { rooms: 1, members: 1, memberships: 1, users: 0 });
  } finally {
    await close();
  }
});

test.run();
