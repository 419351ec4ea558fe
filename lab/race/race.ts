// The race lab's public surface, one concern a file: lab (topology and service), conntrack, clients, shaper,
// scenario (one row), matrix, table. Re-exports only.
export * from './lab.js'
export * from './conntrack.js'
export * from './clients.js'
export * from './shaper.js'
export * from './scenario.js'
export * from './matrix.js'
export * from './table.js'
