import { describe, expect, it } from 'vitest';
import { parseWarmFile } from './warm-entries';

describe('parseWarmFile', () => {
  it('reads a go.sum: each module@version once, /go.mod lines included', () => {
    const text = [
      'github.com/Azure/go-autorest v14.2.0+incompatible h1:V5VMDjClD3GiElqLWO7mz2MxNAK/vTfRHdAubSIPRgs=',
      'github.com/Azure/go-autorest v14.2.0+incompatible/go.mod h1:r+4oMnoxhatjLLJ6zxSWATqVooLgysK6ZNox3g/xq24=',
      'golang.org/x/mod v0.17.0/go.mod h1:hTbmBsO62+eylJbnUtE2MGJUyE7QWk4xUqPFrRgJ+7c=',
      '',
      'golang.org/x/text v0.0.0-20170915032832-14c0d48ead0c h1:qgOY6WgZOaTkIIMiVjBQcw93ERBE4m30iBm00nkL0i8=',
    ].join('\n');
    expect(parseWarmFile(text, '/src/app/go.sum')).toEqual({
      format: 'go.sum',
      entries: [
        { module: 'github.com/Azure/go-autorest', version: 'v14.2.0+incompatible' },
        { module: 'golang.org/x/mod', version: 'v0.17.0' },
        { module: 'golang.org/x/text', version: 'v0.0.0-20170915032832-14c0d48ead0c' },
      ],
      errors: [],
    });
  });

  it("reads a go.mod's require directives, single and in blocks, and nothing else", () => {
    const text = [
      'module example.com/app',
      '',
      'go 1.22',
      '',
      'require golang.org/x/mod v0.17.0',
      'require (',
      '\tgithub.com/pkg/errors v0.9.1 // indirect',
      '\t"example.com/quoted" v1.0.0',
      '\t// a comment line',
      ')',
      'replace example.com/old => ../old',
      'exclude example.com/bad v1.0.0',
      'retract v0.1.0',
    ].join('\n');
    expect(parseWarmFile(text, 'go.mod')).toEqual({
      format: 'go.mod',
      entries: [
        { module: 'golang.org/x/mod', version: 'v0.17.0' },
        { module: 'github.com/pkg/errors', version: 'v0.9.1' },
        { module: 'example.com/quoted', version: 'v1.0.0' },
      ],
      errors: [],
    });
    // Told apart by content when the name says nothing.
    expect(parseWarmFile(text, 'deps.txt').format).toBe('go.mod');
  });

  it('reads module@version lines with comments, and reports the lines it cannot use', () => {
    const text = [
      '# modules for the build farm',
      'example.com/a@v1.0.0',
      'example.com/a@v1.0.0 // again',
      'example.com/b@v1.2',
      'not a module line',
      'Example.com/c@v1.0.0',
      'example.com/d@latest',
      'example.com/e@v2.0.0-rc.1',
    ].join('\n');
    const parsed = parseWarmFile(text, 'modules.txt');
    expect(parsed.format).toBe('list');
    expect(parsed.entries).toEqual([
      { module: 'example.com/a', version: 'v1.0.0' },
      { module: 'example.com/e', version: 'v2.0.0-rc.1' },
    ]);
    expect(parsed.errors.map((e) => [e.line, e.reason.replace(/:.*/, '')])).toEqual([
      [4, 'invalid version "v1.2"'],
      [5, 'expected "<module>@<version>"'],
      [6, 'invalid module path'],
      [7, 'invalid version "latest"'],
    ]);
  });

  it('reports a go.sum line that is not one', () => {
    const parsed = parseWarmFile('example.com/a v1.0.0\nexample.com/b v1.0.0 h1:x=\n', 'go.sum');
    expect(parsed.entries).toEqual([{ module: 'example.com/b', version: 'v1.0.0' }]);
    expect(parsed.errors).toEqual([
      { line: 1, text: 'example.com/a v1.0.0', reason: 'expected "<module> <version>[/go.mod] <hash>"' },
    ]);
  });
});
