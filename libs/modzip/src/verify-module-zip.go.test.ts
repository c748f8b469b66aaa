import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import {
  hashGoMod,
  MAX_GO_MOD,
  MAX_LICENSE,
  synthesizedGoMod,
  verifyGoModMatches,
  verifyModuleZip,
} from './index';
import { buildZip, patchZip, type ZipEntrySpec } from '@modproxy/testing';
import { FileSystemProxy, type GoDownloadResult } from './test-support/file-system-proxy';

/**
 * Every fixture goes through both the real go command (`go mod download` from a file-system
 * GOPROXY) and verifyModuleZip: accepted zips must hash the same, refused ones must be
 * refused by both.
 */
interface Fixture {
  module: string;
  version: string;
  mod: string;
  entries: ZipEntrySpec[];
  patch?: [string | Buffer, string | Buffer];
  /** For refused zips: a fragment of the go command's error and of ours. */
  refuse?: { go: RegExp; ours: RegExp };
}

const goMod = (module: string): string => `module ${module}\n\ngo 1.21\n`;
const at = (module: string, version: string, name: string): string => `${module}@${version}/${name}`;

function accepted(
  module: string,
  version: string,
  files: Record<string, string>,
  extra: ZipEntrySpec[] = [],
): Fixture {
  const mod = files['go.mod'] ?? synthesizedGoMod(module).toString();
  const entries = Object.entries(files).map(([name, data], i) => ({
    name: at(module, version, name),
    data,
    compress: i % 2 === 0,
  }));
  return { module, version, mod, entries: [...extra, ...entries] };
}

function refused(
  module: string,
  version: string,
  names: string[],
  refuse: Fixture['refuse'],
  patch?: Fixture['patch'],
): Fixture {
  return {
    module,
    version,
    mod: goMod(module),
    entries: names.map((name) => ({
      name: name.includes('@') ? name : at(module, version, name),
      data: name.endsWith('go.mod') ? goMod(module) : `// ${name}\n`,
    })),
    refuse,
    ...(patch ? { patch } : {}),
  };
}

const ACCEPTED: Fixture[] = [
  accepted('example.com/basic', 'v1.0.0', {
    'go.mod': goMod('example.com/basic'),
    'basic.go': 'package basic\n',
    'a-b.go': 'package basic // a-b\n',
    'a.go': 'package basic // a\n',
    'a/b.go': 'package b\n',
    'sub/deep/x.go': 'package deep\n',
    LICENSE: 'Apache-2.0\n',
    'README.md': '# basic\n',
    // U+FF26 sorts before U+1D400 in UTF-8 but after it in UTF-16: the hash must use Go's byte order.
    '\uff26ull.txt': 'fullwidth\n',
    '\u{1d400}.txt': 'math bold\n',
    'caf\u00e9.go': 'package basic // café\n',
    'empty.txt': '',
  }),
  accepted('example.com/Upper/Mod', 'v1.2.0-RC.1', {
    'go.mod': goMod('example.com/Upper/Mod'),
    'Mod.go': 'package Mod\n',
  }),
  accepted('example.com/legacy', 'v2.0.0+incompatible', { 'legacy.go': 'package legacy\n' }),
  accepted(
    'example.com/dirs',
    'v1.0.0',
    { 'go.mod': goMod('example.com/dirs'), 'sub/x.go': 'package sub\n' },
    [{ name: 'example.com/dirs@v1.0.0/' }, { name: 'example.com/dirs@v1.0.0/sub/' }],
  ),
  accepted('example.com/pseudo', 'v0.0.0-20240102030405-abcdefabcdef', {
    'go.mod': goMod('example.com/pseudo'),
    'p.go': 'package p\n',
  }),
  accepted('example.com/major/v3', 'v3.1.0', {
    'go.mod': goMod('example.com/major/v3'),
    'm.go': 'package major\n',
  }),
  accepted('gopkg.in/fixture.v2', 'v2.4.0', { 'fixture.go': 'package fixture\n' }),
];

const REFUSED: Fixture[] = [
  refused('example.com/prefix', 'v1.0.0', ['go.mod', 'example.com/other@v1.0.0/x.go'], {
    go: /unexpected file/,
    ours: /does not have prefix/,
  }),
  refused('example.com/fold', 'v1.0.0', ['go.mod', 'a.go', 'A.go'], {
    go: /case-insensitive file name collision/,
    ours: /case-insensitive file name collision/,
  }),
  refused('example.com/dirfold', 'v1.0.0', ['go.mod', 'Sub/a.go', 'sub/b.go'], {
    go: /case-insensitive file name collision/,
    ours: /case-insensitive file name collision/,
  }),
  refused('example.com/twice', 'v1.0.0', ['go.mod', 'a.go', 'a.go'], {
    go: /multiple entries/,
    ours: /multiple entries/,
  }),
  refused('example.com/fileanddir', 'v1.0.0', ['go.mod', 'a', 'a/b.go'], {
    go: /both a file and a directory/,
    ours: /both a file and a directory/,
  }),
  refused(
    'example.com/dotdot',
    'v1.0.0',
    ['go.mod', 'xx/evil.go'],
    { go: /invalid path element/, ours: /invalid path element/ },
    ['xx/evil', '../evil'],
  ),
  refused('example.com/unclean', 'v1.0.0', ['go.mod', 'a/xx/b.go'], { go: /not clean/, ours: /not clean/ }, [
    'a/xx/b',
    'a/../b',
  ]),
  refused('example.com/dot', 'v1.0.0', ['go.mod', 'zzb.go'], { go: /not clean/, ours: /not clean/ }, [
    'zzb.go',
    './b.go',
  ]),
  refused('example.com/windows', 'v1.0.0', ['go.mod', 'con.go'], {
    go: /disallowed as path element component on Windows/,
    ours: /disallowed/,
  }),
  refused('example.com/badchar', 'v1.0.0', ['go.mod', 'x:y.go'], {
    go: /invalid char/,
    ours: /invalid char/,
  }),
  refused('example.com/nested', 'v1.0.0', ['go.mod', 'sub/go.mod'], {
    go: /not in module root/,
    ours: /not in module root/,
  }),
  refused('example.com/upper', 'v1.0.0', ['GO.MOD'], { go: /lowercase/, ours: /lowercase/ }),
  {
    module: 'example.com/bigmod',
    version: 'v1.0.0',
    mod: goMod('example.com/bigmod'),
    // Real bytes, not a forged header: deflate makes 16 MiB of comment lines a tiny zip.
    entries: [
      { name: at('example.com/bigmod', 'v1.0.0', 'go.mod'), data: Buffer.alloc(MAX_GO_MOD + 1, '/') },
    ],
    refuse: { go: /go.mod file too large/, ours: /go.mod file too large/ },
  },
  refused('example.com/utf8', 'v1.0.0', ['go.mod', 'xq.go'], { go: /invalid UTF-8/, ours: /UTF-8/ }, [
    'xq.go',
    Buffer.from('x\xff.go', 'latin1'),
  ]),
  {
    module: 'example.com/biglicense',
    version: 'v1.0.0',
    mod: goMod('example.com/biglicense'),
    entries: [
      { name: at('example.com/biglicense', 'v1.0.0', 'go.mod'), data: goMod('example.com/biglicense') },
      { name: at('example.com/biglicense', 'v1.0.0', 'LICENSE'), data: Buffer.alloc(MAX_LICENSE + 1, ' ') },
    ],
    refuse: { go: /LICENSE file too large/, ours: /LICENSE file too large/ },
  },
  {
    module: 'example.com/crc',
    version: 'v1.0.0',
    mod: goMod('example.com/crc'),
    entries: [
      { name: at('example.com/crc', 'v1.0.0', 'go.mod'), data: goMod('example.com/crc'), compress: false },
      { name: at('example.com/crc', 'v1.0.0', 'data.txt'), data: 'original content\n', compress: false },
    ],
    patch: ['original content', 'tampered content'],
    refuse: { go: /checksum error/, ours: /checksum|CRC/ },
  },
];

describe('verifyModuleZip against the go command', () => {
  let proxy: FileSystemProxy;
  let go: Map<string, GoDownloadResult>;
  const zipPaths = new Map<string, string>();

  beforeAll(async () => {
    proxy = await FileSystemProxy.create();
    for (const f of [...ACCEPTED, ...REFUSED]) {
      let zip = await buildZip(f.entries);
      if (f.patch) zip = patchZip(zip, f.patch[0], f.patch[1]);
      zipPaths.set(`${f.module}@${f.version}`, await proxy.add(f.module, f.version, f.mod, zip));
    }
    go = await proxy.goModDownload([...ACCEPTED, ...REFUSED].map((f) => `${f.module}@${f.version}`));
  });

  afterAll(async () => {
    await proxy?.remove();
  });

  it.each(ACCEPTED.map((f) => [`${f.module}@${f.version}`, f] as const))(
    '%s: same Sum and GoModSum as go mod download',
    async (key, f) => {
      const result = go.get(key);
      expect(result?.Error).toBeUndefined();
      expect(result?.Sum).toMatch(/^h1:/);
      const verified = await verifyModuleZip(zipPaths.get(key) ?? '', f.module, f.version);
      expect(verified.h1).toBe(result?.Sum);
      expect(hashGoMod(Buffer.from(f.mod))).toBe(result?.GoModSum);
      expect(verified.files).toBe(f.entries.filter((e) => !e.name.endsWith('/')).length);
      expect(verified.size).toBe(f.entries.reduce((n, e) => n + Buffer.byteLength(e.data ?? ''), 0));
      // The served .mod must be the zip's go.mod, or the synthesized one for a zip without.
      const hasGoMod = f.entries.some((e) => e.name === at(f.module, f.version, 'go.mod'));
      expect(verified.goMod?.toString()).toBe(hasGoMod ? f.mod : undefined);
      verifyGoModMatches(verified.goMod, Buffer.from(f.mod), f.module, f.version);
    },
  );

  it.each(REFUSED.map((f) => [`${f.module}@${f.version}`, f] as const))(
    '%s: refused by the go command and by us',
    async (key, f) => {
      expect(go.get(key)?.Error).toMatch(f.refuse?.go ?? /./);
      const error = await verifyModuleZip(zipPaths.get(key) ?? '', f.module, f.version).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isModuleError(error, 'invalid-argument')).toBe(true);
      expect(error).toMatchObject({ op: 'modzip.verify', module: f.module, version: f.version });
      expect((error as Error).message).toMatch(f.refuse?.ours ?? /./);
    },
  );
});
