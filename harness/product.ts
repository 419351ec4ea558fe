// The one door from the harness, the labs and the benchmark into the product's modules: every import of
// src/ outside the product and its unit tests goes through this file, so moving a src/ file changes one line here.
// Re-exports only; it must not add behaviour (a harness that reimplements the product would test itself).
// '#product/*' (package.json "imports"): src/ for the types, the product's own dist/ at run time, so the
// compiled harness runs the very files the product ships. None of these loads the addon.
export { createRunner, netnsWrap, type ExecOptions, type ExecResult, type Runner } from '#product/kernel/exec.js'
export { errorMessage } from '#product/errors.js'
export {
  parseConntrackStats,
  parseNfqueueStats,
  type ConntrackStats,
  type NfqueueStats,
} from '#product/kernel/procfs.js'
export { kernelAtLeast, parseKernelRelease, type KernelVersion } from '#product/kernel/release.js'
export { DEFAULT_PAIR_SLOTS, heldCapacity, preallocatedBytes } from '#product/dataplane/limits.js'
export { limits } from '#product/dataplane/constants.js'
