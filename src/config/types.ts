// The validated configuration every module works from. Types only: parsing and checks live in config/load.ts.

export type Hook = 'prerouting' | 'output'
/** An address family as the rules and CIDRs name it. */
export type Family = 'ipv4' | 'ipv6'
export type RulesMode = 'manage' | 'none'
export type IptablesBackend = 'auto' | 'nft' | 'legacy'
export type ShapeMode = 'fixed' | 'pair'
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
/** How the NFQUEUE rule pre-classifies in the kernel (src/dataplane/bpf.ts, docs/kernel-filter.md). */
export type KernelFilter = 'auto' | 'bpf' | 'u32' | 'off'

export interface Config {
  /** First NFQUEUE number. */
  queue: number
  /** Number of queues (queue .. queue+queues-1); >1 makes the rule use --queue-balance. */
  queues: number
  /** Hold time in milliseconds for held query types (fractions allowed). */
  delayMs: number
  /** QTYPE numbers that are held (the config file's "holds" types included). */
  qtypes: number[]
  mode: ShapeMode
  /** Pair mode: an A accepted this recently releases its AAAA at once. */
  pairWindowMs: number
  rules: RulesMode
  dnsPort: number
  /** Restrict shaping to these destination CIDRs (IPv4 and/or IPv6). Empty: any destination. */
  dnsIp: string[]
  /** Set when dnsIp came from `--dns-ip auto`: the resolv.conf read, and the nameserver lines left out. */
  dnsIpAuto?: { resolvConf: string; ignored: { value: string; why: string }[] }
  /** The resolv.conf `--dns-ip auto` reads. */
  resolvConf: string
  /** Restrict shaping to packets entering (prerouting) / leaving (output) these interfaces. Empty: any. */
  interfaces: string[]
  hooks: Hook[]
  /** Shape IPv4 DNS (off: no IPv4 rules, and a failing iptables is only logged: IPv6-only nodes). */
  ipv4: boolean
  ipv6: boolean
  iptablesBackend: IptablesBackend
  /**
   * bpf: an xt_bpf program queues only the held query types (A too in pair mode); u32: only DNS
   * queries (responses and other opcodes stay in the kernel); off: every packet to the DNS port;
   * auto: bpf, else u32 when the kernel or iptables lacks xt_bpf, else off.
   */
  kernelFilter: KernelFilter
  /** host:port for /metrics, /healthz, /readyz; empty string disables the listener. */
  metricsListen: string
  maxHeld: number
  dryRun: boolean
  configFile?: string
  /** Seconds between two reads of --config to notice a change (with jitter); 0: only on SIGHUP. */
  configPollIntervalS: number
  logLevel: LogLevel
}
