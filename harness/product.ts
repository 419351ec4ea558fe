// The one door from the harness, the labs and the benchmark into the product's modules: every import of
// src/ outside the product and its unit tests goes through this file, so moving a src/ file changes one line here.
// Re-exports only; it must not add behaviour (a harness that reimplements the product would test itself).
export { createRunner, netnsWrap, type ExecOptions, type ExecResult, type Runner } from '#product/exec.js'
export { errorMessage } from '#product/errors.js'
export { parseConntrackStats, parseNfqueueStats, type ConntrackStats, type NfqueueStats } from '#product/procfs.js'
export { kernelAtLeast, parseKernelRelease, type KernelVersion } from '#product/kernel.js'
export { DEFAULT_PAIR_SLOTS, heldCapacity, preallocatedBytes } from '#product/limits.js'
export { limits } from '#product/nfqueue.js'
