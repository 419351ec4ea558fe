// TypeScript excess-property check of a manifest against a kubernetes-models interface: catches
// misspelt fields that the models' OpenAPI schemas let through. Test-only.
import ts from 'typescript'
import { fileURLToPath } from 'node:url'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/** Errors TypeScript reports when `value` is assigned to the given model interface (excess fields included). */
export function typeErrors(value: unknown, typeName: string, from: string): string[] {
  // A virtual file inside the repository, so module resolution finds node_modules.
  const file = `${repoRoot}test/__model_types__.ts`
  const source = `import type { ${typeName} } from '${from}'\nexport const v: ${typeName} = ${JSON.stringify(value, null, 1)}\n`
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  }
  const host = ts.createCompilerHost(options)
  const read = host.getSourceFile.bind(host)
  host.getSourceFile = (name, lang, ...rest) =>
    name === file ? ts.createSourceFile(name, source, lang) : read(name, lang, ...rest)
  const exists = host.fileExists.bind(host)
  host.fileExists = name => name === file || exists(name)
  const program = ts.createProgram([file], options, host)
  return ts.getPreEmitDiagnostics(program).map(d => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
}
