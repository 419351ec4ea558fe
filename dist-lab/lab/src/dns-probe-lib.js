// Pure parts of the DNS probe: argument parsing, query building, reply matching, percentiles, and the
// probe loop over an injected socket and clock. No network and no process exit here (probe.ts does those).
import { randomInt } from 'node:crypto';
import dnsPacket from 'dns-packet';
export const PROBE_TYPES = ['A', 'AAAA', 'CNAME', 'MX', 'NS', 'PTR', 'SOA', 'SRV', 'TXT', 'CAA'];
const RCODES = [
    'NOERROR',
    'FORMERR',
    'SERVFAIL',
    'NXDOMAIN',
    'NOTIMP',
    'REFUSED',
    'YXDOMAIN',
    'YXRRSET',
    'NXRRSET',
    'NOTAUTH',
    'NOTZONE',
];
export const PROBE_LIMITS = {
    maxCount: 1_000_000,
    maxTimeoutMs: 60_000,
    maxIntervalMs: 60_000,
    maxDurationMs: 3_600_000,
    maxNames: 10_000,
};
export const PROBE_DEFAULTS = {
    server: '',
    port: 53,
    types: ['A'],
    names: ['host1.example.test'],
    count: 1,
    intervalMs: 0,
    timeoutMs: 1000,
    pair: false,
    freshSocket: false,
    samples: true,
    maxDurationMs: 120_000,
};
export class ProbeArgError extends Error {
    constructor(message) {
        super(message);
        this.name = 'ProbeArgError';
    }
}
export const PROBE_USAGE = `usage: probe --server IP [--port 53] [--type A|AAAA|A,AAAA] [--name NAME | --names a,b,c]
             [--count N] [--interval-ms MS] [--timeout-ms MS] [--pair] [--fresh-socket]
             [--no-samples] [--max-duration-ms MS]
Prints one JSON object: {sent, received, lost, samples:[{seq, name, type, rttUs, rcode, answers}], byType, ...}`;
function intArg(flag, v, min, max) {
    if (!/^\d+$/.test(v))
        throw new ProbeArgError(`${flag}: expected an integer ${min}..${max}, got "${v}"`);
    const n = Number(v);
    if (n < min || n > max)
        throw new ProbeArgError(`${flag}: expected an integer ${min}..${max}, got ${n}`);
    return n;
}
function isIp(s) {
    return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || (s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s));
}
export function parseTypes(v) {
    const out = [];
    for (const raw of v.split(',')) {
        const t = raw.trim().toUpperCase();
        if (!PROBE_TYPES.includes(t)) {
            throw new ProbeArgError(`--type: unknown type "${raw}"; accepted: ${PROBE_TYPES.join(', ')}`);
        }
        out.push(t);
    }
    if (out.length === 0)
        throw new ProbeArgError('--type: empty');
    return out;
}
function parseNames(v) {
    const names = v
        .split(',')
        .map(s => s.trim())
        .filter(s => s.length > 0);
    if (names.length === 0 || names.length > PROBE_LIMITS.maxNames)
        throw new ProbeArgError(`--names: expected 1..${PROBE_LIMITS.maxNames} names`);
    for (const n of names) {
        if (n.length > 253 || !/^[A-Za-z0-9_.-]+$/.test(n))
            throw new ProbeArgError(`--name: invalid name "${n}"`);
    }
    return names;
}
/** Parses probe CLI flags (`--flag value` or `--flag=value`). Throws ProbeArgError naming the flag. */
export function parseProbeArgs(argv) {
    const o = { ...PROBE_DEFAULTS, types: [...PROBE_DEFAULTS.types], names: [...PROBE_DEFAULTS.names] };
    let typesSet = false;
    const args = [...argv];
    for (let i = 0; i < args.length; i++) {
        let flag = args[i];
        let value;
        const eq = flag.indexOf('=');
        if (flag.startsWith('--') && eq > 0) {
            value = flag.slice(eq + 1);
            flag = flag.slice(0, eq);
        }
        const take = () => {
            if (value !== undefined)
                return value;
            const v = args[++i];
            if (v === undefined)
                throw new ProbeArgError(`${flag}: missing value`);
            return v;
        };
        switch (flag) {
            case '--server': {
                const v = take();
                if (!isIp(v))
                    throw new ProbeArgError(`--server: expected an IPv4 or IPv6 address, got "${v}"`);
                o.server = v;
                break;
            }
            case '--port':
                o.port = intArg(flag, take(), 1, 65535);
                break;
            case '--type':
            case '--types':
                o.types = parseTypes(take());
                typesSet = true;
                break;
            case '--name':
            case '--names':
                o.names = parseNames(take());
                break;
            case '--count':
                o.count = intArg(flag, take(), 1, PROBE_LIMITS.maxCount);
                break;
            case '--interval-ms':
                o.intervalMs = intArg(flag, take(), 0, PROBE_LIMITS.maxIntervalMs);
                break;
            case '--timeout-ms':
                o.timeoutMs = intArg(flag, take(), 1, PROBE_LIMITS.maxTimeoutMs);
                break;
            case '--max-duration-ms':
                o.maxDurationMs = intArg(flag, take(), 1, PROBE_LIMITS.maxDurationMs);
                break;
            case '--pair':
                o.pair = true;
                break;
            case '--fresh-socket':
                o.freshSocket = true;
                break;
            case '--no-samples':
                o.samples = false;
                break;
            case '--help':
            case '-h':
                throw new ProbeArgError(PROBE_USAGE);
            default:
                throw new ProbeArgError(`unknown flag "${flag}"\n${PROBE_USAGE}`);
        }
    }
    if (!o.server)
        throw new ProbeArgError('--server: required');
    if (o.pair && !typesSet)
        o.types = ['A', 'AAAA'];
    return o;
}
/** CLI arguments for `probe.js` that parseProbeArgs() turns back into the same options. */
export function probeArgv(opts) {
    const o = { ...PROBE_DEFAULTS, ...opts };
    if (opts.pair && !opts.types)
        o.types = ['A', 'AAAA'];
    const a = ['--server', o.server, '--port', String(o.port), '--type', o.types.join(','), '--names', o.names.join(',')];
    a.push('--count', String(o.count), '--interval-ms', String(o.intervalMs), '--timeout-ms', String(o.timeoutMs));
    a.push('--max-duration-ms', String(o.maxDurationMs));
    if (o.pair)
        a.push('--pair');
    if (o.freshSocket)
        a.push('--fresh-socket');
    if (!o.samples)
        a.push('--no-samples');
    return a;
}
/** Wall-clock bound (ms) a probe run with these options can take, plus slack. */
export function probeTimeBoundMs(opts) {
    const o = { ...PROBE_DEFAULTS, ...opts };
    if (opts.pair && !opts.types)
        o.types = ['A', 'AAAA'];
    const perLookup = o.timeoutMs * (o.pair ? 1 : o.types.length) + o.intervalMs;
    return Math.min(o.maxDurationMs + o.timeoutMs, o.count * perLookup) + 5000;
}
/** A recursive-desired query for name/type with the given id. */
export function buildQuery(id, name, type) {
    return dnsPacket.encode({
        type: 'query',
        id,
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [{ type: type, name, class: 'IN' }],
    });
}
/** Decodes a reply; null for anything that is not a well-formed response with one question. */
export function parseReply(buf) {
    if (buf.length < 12 || (buf[2] & 0x80) === 0)
        return null;
    try {
        const p = dnsPacket.decode(buf);
        const q = p.questions?.[0];
        if (!q || p.id === undefined)
            return null;
        return {
            id: p.id,
            rcode: RCODES[buf[3] & 0x0f] ?? String(buf[3] & 0x0f),
            truncated: (buf[2] & 0x02) !== 0,
            qname: q.name,
            qtype: q.type,
            answers: buf.readUInt16BE(6),
        };
    }
    catch {
        return null;
    }
}
function normName(n) {
    return n.toLowerCase().replace(/\.$/, '');
}
/** True when the reply answers this question (id matched by the caller's map). */
export function replyMatches(reply, name, type) {
    return normName(reply.qname) === normName(name) && reply.qtype.toUpperCase() === type.toUpperCase();
}
/**
 * Nearest-rank percentile: the smallest value with at least p% of values at or below it.
 * p in 0..100; p=0 gives the minimum; NaN for an empty list.
 */
export function percentile(values, p) {
    if (!(p >= 0 && p <= 100))
        throw new RangeError(`percentile: p must be 0..100, got ${p}`);
    if (values.length === 0)
        return Number.NaN;
    const sorted = [...values].sort((a, b) => a - b);
    const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
    return sorted[rank - 1];
}
function orNull(n) {
    return Number.isFinite(n) ? n : null;
}
/** Per-type latency summary. */
export function summarize(samples, sent, lost) {
    const rtts = samples.map(s => s.rttUs);
    const mean = rtts.length ? rtts.reduce((a, b) => a + b, 0) / rtts.length : Number.NaN;
    return {
        sent,
        received: samples.length,
        lost,
        minUs: orNull(percentile(rtts, 0)),
        p50Us: orNull(percentile(rtts, 50)),
        p90Us: orNull(percentile(rtts, 90)),
        p99Us: orNull(percentile(rtts, 99)),
        maxUs: orNull(percentile(rtts, 100)),
        meanUs: orNull(Math.round(mean)),
    };
}
export function familyOf(server) {
    return server.includes(':') ? 'udp6' : 'udp4';
}
const LATE_MEMORY = 4096;
/** Runs the probe: `count` lookups, each bounded by timeoutMs, the whole run by maxDurationMs. */
export async function runProbe(o, deps) {
    const randomId = deps.randomId ?? (() => randomInt(0, 65536));
    const startNs = deps.now();
    const deadlineNs = startNs + BigInt(o.maxDurationMs) * 1000000n;
    const pending = new Map();
    const timedOut = new Set();
    const samples = [];
    const sentBy = new Map();
    const lostBy = new Map();
    const rcodes = {};
    const r = { sent: 0, received: 0, lost: 0, late: 0, mismatched: 0, truncated: 0, socketErrors: 0 };
    let lookups = 0;
    let stoppedByTime = false;
    const onMessage = (msg) => {
        const nowNs = deps.now();
        const reply = parseReply(msg);
        if (!reply) {
            r.mismatched++;
            return;
        }
        const p = pending.get(reply.id);
        if (!p) {
            if (timedOut.has(reply.id))
                r.late++;
            else
                r.mismatched++;
            return;
        }
        if (!replyMatches(reply, p.name, p.type)) {
            r.mismatched++;
            return;
        }
        pending.delete(reply.id);
        r.received++;
        if (reply.truncated)
            r.truncated++;
        rcodes[reply.rcode] = (rcodes[reply.rcode] ?? 0) + 1;
        samples.push({
            seq: p.seq,
            name: p.name,
            type: p.type,
            rttUs: Number((nowNs - p.sentNs) / 1000n),
            rcode: reply.rcode,
            answers: reply.answers,
        });
        p.done();
    };
    const onError = () => {
        r.socketErrors++;
    };
    const newId = () => {
        for (let i = 0; i < 64; i++) {
            const id = randomId() & 0xffff;
            if (!pending.has(id) && !timedOut.has(id))
                return id;
        }
        return randomId() & 0xffff;
    };
    // Starts one query without awaiting the send, so a pair leaves back to back. Returns the
    // promises wrapped: a bare promise would be flattened by an await.
    const send = (sock, seq, name, type) => {
        const id = newId();
        let done;
        const answered = new Promise(res => (done = res));
        const msg = buildQuery(id, name, type);
        pending.set(id, { seq, name, type, sentNs: deps.now(), done });
        sentBy.set(type, (sentBy.get(type) ?? 0) + 1);
        r.sent++;
        const sent = sock.send(msg).catch(() => {
            r.socketErrors++;
        });
        return { sent, answered };
    };
    const expire = () => {
        for (const [id, p] of pending) {
            r.lost++;
            lostBy.set(p.type, (lostBy.get(p.type) ?? 0) + 1);
            timedOut.add(id);
            if (timedOut.size > LATE_MEMORY)
                timedOut.delete(timedOut.values().next().value);
        }
        pending.clear();
    };
    const waitAll = async (answers) => {
        let timer;
        await Promise.race([Promise.all(answers), new Promise(res => (timer = setTimeout(res, o.timeoutMs)))]);
        clearTimeout(timer);
        expire();
    };
    let shared;
    try {
        for (let seq = 0; seq < o.count; seq++) {
            if (deps.now() >= deadlineNs) {
                stoppedByTime = true;
                break;
            }
            const name = o.names[seq % o.names.length];
            const sock = o.freshSocket
                ? await deps.openSocket(onMessage, onError)
                : (shared ??= await deps.openSocket(onMessage, onError));
            try {
                if (o.pair) {
                    // Back to back from one socket, like glibc's sendmmsg of A and AAAA; each answer timed on its own.
                    const qs = o.types.map(t => send(sock, seq, name, t));
                    await Promise.all(qs.map(q => q.sent));
                    await waitAll(qs.map(q => q.answered));
                }
                else {
                    for (const t of o.types) {
                        const q = send(sock, seq, name, t);
                        await q.sent;
                        await waitAll([q.answered]);
                    }
                }
            }
            finally {
                if (o.freshSocket)
                    sock.close();
            }
            lookups++;
            if (o.intervalMs > 0 && seq < o.count - 1)
                await new Promise(res => setTimeout(res, o.intervalMs));
        }
    }
    finally {
        shared?.close();
    }
    const byType = {};
    for (const t of o.types) {
        byType[t] = summarize(samples.filter(s => s.type === t), sentBy.get(t) ?? 0, lostBy.get(t) ?? 0);
    }
    return {
        server: o.server,
        port: o.port,
        family: familyOf(o.server),
        pair: o.pair,
        freshSocket: o.freshSocket,
        lookups,
        ...r,
        stoppedByTime,
        rcodes,
        byType,
        durationMs: Number((deps.now() - startNs) / 1000000n),
        samples: o.samples ? samples : [],
    };
}
//# sourceMappingURL=dns-probe-lib.js.map