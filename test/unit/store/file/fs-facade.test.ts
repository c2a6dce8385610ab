import { test } from '../../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { countingFs, realFs } from '../../../../lib/store/file/fs-facade.js';

test('realFs and countingFs: every call reaches the disk and is counted', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'netloop-'));
  try {
    const cfs = countingFs();
    const sub = path.join(dir, 'a', 'b');
    await cfs.mkdir(sub);
    await cfs.mkdir(sub); // recursive: no error when present
    const file = path.join(sub, 'f');
    const h = await cfs.open(file, 'w');
    const data = Buffer.from('hello world');
    assert.is((await h.write(data, 0, data.length, 0)).bytesWritten, data.length);
    await h.write(data, 0, 5, 20);
    await h.sync();
    await h.truncate(11);
    await h.close();
    await cfs.rename(file, `${file}2`);
    assert.equal(await cfs.readFile(`${file}2`), data);
    assert.equal(await cfs.readdir(sub), ['f2']);
    await cfs.unlink(`${file}2`);
    assert.equal(await realFs.readdir(sub), []);
    assert.equal(cfs.counts, { opens: 1, writes: 2, bytesWritten: 16, fsyncs: 1, truncates: 1, renames: 1, reads: 1, unlinks: 1 });
    cfs.reset();
    assert.is(cfs.counts.writes, 0);
    await cfs.readFile(path.join(dir, 'missing')).then(
      () => assert.unreachable('should fail'),
      (err: NodeJS.ErrnoException) => assert.is(err.code, 'ENOENT'),
    );
    assert.is(cfs.counts.reads, 1, 'failed calls are counted');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test.run();
