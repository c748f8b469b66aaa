import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createTempDir, removeDir, runCommand } from '@modproxy/testing';

const root = join(__dirname, '..', '..', '..');
const rulesDir = join(root, 'deploy', 'prometheus', 'rules');
const testsDir = join(root, 'deploy', 'prometheus', 'tests');
const env = { PATH: process.env['PATH'] ?? '' };

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

async function ruleFiles(): Promise<string[]> {
  return (await readdir(rulesDir))
    .filter((name) => name.endsWith('.yml'))
    .map((name) => join(rulesDir, name));
}

async function rulesOf(path: string): Promise<Rule[]> {
  const file = parseYaml(await readFile(path, 'utf8')) as { groups: Array<{ rules: Rule[] }> };
  return file.groups.flatMap((group) => group.rules);
}

/** GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to dashes. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

describe('Prometheus alert rules (promtool, Debian prometheus package)', () => {
  let scratch: string;

  beforeAll(async () => {
    scratch = await createTempDir('alert-rules-');
  });
  afterAll(async () => {
    await removeDir(scratch);
  });

  it('pass promtool check rules, every rule counted', async () => {
    const files = await ruleFiles();
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const result = await runCommand('promtool', ['check', 'rules', file], { env });
      expect(result.exitCode, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toContain(`SUCCESS: ${(await rulesOf(file)).length} rules found`);
    }
  });

  it('a rule with a broken expression is refused, so the check above is a real one', async () => {
    const [file] = await ruleFiles();
    const broken = (await readFile(file ?? '', 'utf8')).replace(
      'modproxy_storage_ready == 0',
      'modproxy_storage_ready == == 0',
    );
    const path = join(scratch, 'broken.yml');
    await writeFile(path, broken);
    const result = await runCommand('promtool', ['check', 'rules', path], { env });
    expect(result.exitCode).not.toBe(0);
    expect(result.stdout + result.stderr).toContain('ModproxyStorageNotReady');
  });

  it('pass their promtool unit tests (the main alerts fire when they must, and not before)', async () => {
    const tests = (await readdir(testsDir)).filter((name) => name.endsWith('.yml'));
    expect(tests.length).toBeGreaterThan(0);
    const result = await runCommand(
      'promtool',
      ['test', 'rules', ...tests.map((name) => join(testsDir, name))],
      {
        env,
        cwd: testsDir,
      },
    );
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('SUCCESS');
  });

  it('fail their unit tests when an alert would not fire (the 5xx threshold raised)', async () => {
    await mkdir(join(scratch, 'rules'), { recursive: true });
    await mkdir(join(scratch, 'tests'), { recursive: true });
    const rules = await readFile(join(rulesDir, 'modproxy.yml'), 'utf8');
    const raised = rules.replace(/(route=~"list\|latest\|info\|mod\|zip"\}\[5m\]\)\)\n\s+> )0\.05/, '$10.5');
    expect(raised).not.toBe(rules);
    await writeFile(join(scratch, 'rules', 'modproxy.yml'), raised);
    await copyFile(join(testsDir, 'modproxy.test.yml'), join(scratch, 'tests', 'modproxy.test.yml'));
    const result = await runCommand(
      'promtool',
      ['test', 'rules', join(scratch, 'tests', 'modproxy.test.yml')],
      {
        env,
      },
    );
    expect(result.exitCode).not.toBe(0);
    expect(result.stdout + result.stderr).toContain('alertname: ModproxyHigh5xxRate');
  });

  it('give every alert a severity, a summary and a runbook that docs/operations.md has', async () => {
    const operations = await readFile(join(root, 'docs', 'operations.md'), 'utf8');
    const anchors = new Set(
      operations
        .split('\n')
        .filter((line) => /^#{1,6} /.test(line))
        .map((line) => anchor(line.replace(/^#+ /, ''))),
    );
    const alerts = (await Promise.all((await ruleFiles()).map(rulesOf))).flat().filter((rule) => rule.alert);
    expect(alerts.length).toBeGreaterThanOrEqual(10);
    for (const rule of alerts) {
      expect(['critical', 'warning', 'info'], rule.alert).toContain(rule.labels?.['severity']);
      expect(rule.annotations?.['summary'], rule.alert).toBeTruthy();
      const runbook = rule.annotations?.['runbook'] ?? '';
      expect(runbook, rule.alert).toBe(`docs/operations.md#${anchor(rule.alert ?? '')}`);
      expect(anchors.has(anchor(rule.alert ?? '')), `docs/operations.md has no heading ${rule.alert}`).toBe(
        true,
      );
    }
  });
});
