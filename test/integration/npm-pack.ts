// The npm package holds only the product: `npm pack --dry-run --json` lists no lab or test code
// (lab/, harness/, dist-harness/, test/, the test-only cBPF interpreter). Needs dist/ built (npm ci / npm run build).
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { labOrTestPaths } from '../helpers/product-files.js'

const repo = fileURLToPath(new URL('../..', import.meta.url))

t.test('helper: recognises lab and test paths', async t => {
  t.same(
    labOrTestPaths(['dist/cli.js', 'dist/rules/plan.js', 'native/queue.cc', 'deploy/kubernetes/daemonset.yaml']),
    [],
  )
  const labOrTest = [
    'lab/race/race.ts',
    'harness/netns.ts',
    'dist/lab/netns.js',
    'dist-harness/src/procfs.js',
    'dist-lab/src/procfs.js',
    'test/cli.ts',
    'dist/policy/cbpf-interp.js',
    'dist/demo.js',
  ]
  t.same(labOrTestPaths(labOrTest), labOrTest)
})

t.test('npm pack --dry-run --json: the package holds no lab or test code', async t => {
  if (!existsSync(`${repo}/dist/cli.js`)) {
    t.fail('dist/ is not built: run npm run build first')
    return
  }
  // --ignore-scripts: packing must not rebuild anything; it lists what dist/ holds now.
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 120_000,
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  const [pack] = JSON.parse(out) as { files: { path: string }[] }[]
  const paths = pack!.files.map(f => f.path)
  t.ok(paths.includes('dist/cli.js'), 'the CLI is packed')
  t.ok(
    paths.includes('build/Release/nfqueue.node') || paths.includes('binding.gyp'),
    'the addon (or its build) is packed',
  )
  t.same(labOrTestPaths(paths), [], 'no lab/ or test/ path, no lab module, no cbpf-interp')
  t.notOk(
    paths.some(p => p.includes('cbpf-interp')),
    'no cbpf-interp',
  )
})
