#!/usr/bin/env node
// @ts-check
/**
 * The API report: API Extractor's summary of everything the package's three
 * entry points (`netloop`, `netloop/testing`, `netloop/ops`) export, one
 * Markdown file per entry in `docs/api-report/`, committed. A change to the
 * public surface then shows in review as a diff of that file.
 *
 * ```
 *   dist/lib/index.d.ts ──┐                         docs/api-report/netloop.api.md
 *   dist/lib/testing.d.ts ┼─▶ API Extractor ──diff─▶ docs/api-report/netloop-testing.api.md
 *   dist/lib/ops/index.d.ts┘   (per entry)           docs/api-report/netloop-ops.api.md
 * ```
 *
 * `npm run api:report` (after a build) writes the reports; with `--check`
 * (what `.ci/run` runs) nothing is written and any difference fails, with
 * the command that updates them. The declarations are read from `dist/`, so
 * build first (`npm run build`).
 */
import { Extractor, ExtractorConfig, ExtractorLogLevel } from '@microsoft/api-extractor';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const reportFolder = path.join(root, 'docs', 'api-report');
const tempFolder = path.join(root, 'dist', 'api-report');

/** Entry point (a built declaration file) and the name of its report. */
const ENTRIES = [
  ['dist/lib/index.d.ts', 'netloop'],
  ['dist/lib/testing.d.ts', 'netloop-testing'],
  ['dist/lib/ops/index.d.ts', 'netloop-ops'],
];

fs.mkdirSync(reportFolder, { recursive: true });
fs.mkdirSync(tempFolder, { recursive: true });
let failed = 0;
for (const [entry, name] of ENTRIES) {
  const entryPath = path.join(root, entry);
  if (!fs.existsSync(entryPath)) {
    console.error(`api-report: ${entry} is missing: run npm run build first`);
    process.exit(2);
  }
  const config = ExtractorConfig.prepare({
    configObject: {
      projectFolder: root,
      mainEntryPointFilePath: entryPath,
      compiler: { tsconfigFilePath: path.join(root, 'tsconfig.json'), skipLibCheck: true },
      apiReport: {
        enabled: true,
        reportFileName: `${name}.api.md`,
        reportFolder,
        reportTempFolder: tempFolder,
        includeForgottenExports: false,
      },
      docModel: { enabled: false },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      messages: {
        // The report records the surface; TSDoc completeness is TypeDoc's check (npm run docs:api).
        extractorMessageReporting: {
          default: { logLevel: ExtractorLogLevel.None, addToApiReportFile: false },
        },
        compilerMessageReporting: { default: { logLevel: ExtractorLogLevel.Warning } },
        tsdocMessageReporting: { default: { logLevel: ExtractorLogLevel.None } },
      },
    },
    configObjectFullPath: path.join(root, 'api-extractor.json'),
    packageJsonFullPath: path.join(root, 'package.json'),
  });
  const result = Extractor.invoke(config, { localBuild: !check, showVerboseMessages: false, messageCallback: quiet });
  if (check && result.apiReportChanged) {
    console.error(`api-report: the public surface of ${entry} differs from docs/api-report/${name}.api.md`);
    console.error(`  (the new report is ${path.relative(root, path.join(tempFolder, `${name}.api.md`))};`);
    console.error('   if the change is intended, run `npm run build && npm run api:report` and commit the report)');
    failed++;
  } else if (!result.succeeded) {
    console.error(`api-report: ${entry}: ${result.errorCount} errors, ${result.warningCount} warnings`);
    failed++;
  } else {
    console.log(`api-report: ${name}.api.md ${result.apiReportChanged ? 'updated' : 'unchanged'}`);
  }
}
process.exit(failed === 0 ? 0 : 1);

/** Drops API Extractor's informational chatter (its version banner, the analysis steps). @param {import('@microsoft/api-extractor').ExtractorMessage} m */
function quiet(m) {
  if (m.logLevel === ExtractorLogLevel.Info || m.logLevel === ExtractorLogLevel.Verbose) m.handled = true;
}
