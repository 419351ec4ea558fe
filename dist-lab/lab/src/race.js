// Conntrack race lab: a kube-proxy-like DNS service (random DNAT to three unbound endpoints) on the
// lab router, C clients in the client namespace, and the router's conntrack counters around each run.
// It only touches namespaces it creates (through createLab) and never the root namespace, except the lab
// kernel's own clash switch (clash-switch.ts), which exists only on the kernel-lab kernel and is put back.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { parseConntrackStats } from '../../src/procfs.js';
import { LabError, killAndWait } from './netns.js';
import { createLab, waitFor } from './topology.js';
import { startUnbound } from './unbound.js';
import { CLI_PATH, repoRoot } from './paths.js';
import { applyServiceMode, ipvsAvailable, SERVICE } from './kube-proxy-modes.js';
import { applyWorkaround, NetemUnavailable, removeWorkaround } from './netem-workaround.js';
import { applyClashPlan, fsSwitchIo, LAB_SWITCH_PATH, planClashHandling } from './clash-switch.js';
/** A name every endpoint answers with A and AAAA (unbound local-data). */
export const LOOKUP_NAME = 'host1.example.test';
const METRICS_PORT = 9363;
export { CLI_PATH } from './paths.js';
// The service rules live with the other kube-proxy modes; re-exported for the lab's callers.
export { SERVICE, serviceNatRules } from './kube-proxy-modes.js';
export const CLIENTS_DIR = join(repoRoot(), 'lab/clients');
// ---------------------------------------------------------------------------------------------
// Rules (pure, so they can be read and tested)
/** The NFQUEUE rule placed after conntrack (mangle), the placement that widens the race. */
export function mangleQueueRules(queue = 0) {
    return [
        '*mangle',
        `-A PREROUTING -p udp --dport 53 -j NFQUEUE --queue-num ${queue} --queue-bypass`,
        'COMMIT',
        '',
    ].join('\n');
}
/**
 * resolv.conf options of the client: one attempt, 1 s timeout, so a dropped query shows as a lookup
 * slower than 1 s instead of libc's 5 s x 2 retries.
 */
export const RESOLV_OPTIONS = ['attempts:1', 'timeout:1'];
export async function createRaceLab(opts = {}) {
    // timeScale stretches every readiness wait (links, unbound, the service check) for slow guests (TCG).
    const scale = opts.timeScale ?? 1;
    const lab = await createLab({ extraServers: 2, settleTimeoutMs: 5000 * scale });
    const unbounds = [];
    try {
        for (const s of lab.servers) {
            unbounds.push(await startUnbound({ ns: s.ns, addresses: [s.ipv4, s.ipv6], hosts: 10, readyTimeoutMs: 10_000 * scale }));
        }
        const endpoints = { ipv4: lab.servers.map(s => s.ipv4), ipv6: lab.servers.map(s => s.ipv6) };
        const router = lab.router.ns;
        let applied = false;
        // The service address is on no link (IPVS mode binds it on kube-ipvs0): the client reaches it by
        // its default route and the router DNATs it in PREROUTING, before routing, as kube-proxy does.
        const rl = {
            lab,
            router,
            client: lab.client.ns,
            endpoints,
            unbounds,
            snat: false,
            service: 'iptables',
            async setService(mode, snat) {
                const target = { router, service: SERVICE, endpoints, serverIface: lab.router.serverIface };
                await applyServiceMode(target, applied ? rl.service : undefined, mode, snat);
                applied = true;
                rl.service = mode;
                rl.snat = snat;
            },
            setSnat(on) {
                return rl.setService(rl.service, on);
            },
            async destroy() {
                await Promise.allSettled(unbounds.map(u => u.stop()));
                await lab.destroy();
            },
        };
        await rl.setService(opts.service ?? 'iptables', opts.snat ?? false);
        lab.client.ns.writeResolvConf([SERVICE.ipv4], { options: RESOLV_OPTIONS });
        // Prove the service path works on both families before measuring anything.
        for (const svc of [SERVICE.ipv4, SERVICE.ipv6]) {
            const ok = await waitFor(async () => {
                const r = await lab.client.ns.exec(['dig', `@${svc}`, '+time=1', '+tries=1', '+short', LOOKUP_NAME, 'A'], {
                    timeoutMs: 3000,
                });
                return r.code === 0 && r.stdout.trim() !== '';
            }, 10_000 * scale, 100);
            if (!ok)
                throw new LabError(`DNS service ${svc} does not answer through the router's DNAT`);
        }
        return rl;
    }
    catch (e) {
        await Promise.allSettled(unbounds.map(u => u.stop()));
        await lab.destroy().catch(() => undefined);
        throw e;
    }
}
export async function readConntrack(ns) {
    const r = await ns.execOk(['cat', '/proc/net/stat/nf_conntrack']);
    const s = parseConntrackStats(r.stdout);
    return { clashResolve: s.clashResolve ?? 0, insertFailed: s.insertFailed ?? 0, drop: s.drop ?? 0 };
}
/** Per-CPU counters are 32-bit: a delta survives one wrap. */
export function conntrackCountersDelta(before, after) {
    const d = (a, b) => (b >= a ? b - a : b + 2 ** 32 - a);
    return {
        clashResolve: d(before.clashResolve, after.clashResolve),
        insertFailed: d(before.insertFailed, after.insertFailed),
        drop: d(before.drop, after.drop),
    };
}
/** Empties the router's conntrack table (both families) so a run starts with no entries. */
export async function flushConntrack(ns) {
    for (const fam of ['ipv4', 'ipv6']) {
        const r = await ns.exec(['conntrack', '-F', '-f', fam]);
        // "0 flow entries have been deleted" exits 0; an empty table on old versions can exit 1.
        if (r.code !== 0 && !/flow entries/i.test(r.stderr)) {
            throw new LabError(`conntrack -F -f ${fam} failed in ${ns.name}: ${r.stderr.trim()}`, {
                hint: 'install the conntrack package',
            });
        }
    }
}
function run(file, args, timeoutMs) {
    return new Promise(resolve => {
        execFile(file, args, { timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
            const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
            resolve({ code, stdout: String(stdout), stderr: String(stderr) });
        });
    });
}
/** Builds lab/clients into a temp dir (glibc always, musl when musl-gcc exists). */
export async function buildClients() {
    const dir = mkdtempSync(join(tmpdir(), 'dnss-race-clients-'));
    const remove = () => rmSync(dir, { recursive: true, force: true });
    const r = await run('make', ['-s', '-C', CLIENTS_DIR, `OUT=${dir}`], 120_000);
    if (r.code !== 0) {
        remove();
        throw new LabError(`building lab/clients failed: ${r.stderr.trim()}`, { hint: 'install gcc and make' });
    }
    const bins = {
        split: join(dir, 'split_cpu_client'),
        pair: join(dir, 'pair_client'),
        'gai-glibc': join(dir, 'gai_client'),
    };
    const m = await run('make', ['-s', '-C', CLIENTS_DIR, `OUT=${dir}`, 'musl'], 120_000);
    if (m.code === 0)
        bins['gai-musl'] = join(dir, 'gai_client-musl');
    return { dir, bins, remove };
}
export function clientArgv(bin, c) {
    const server = c.family === 4 ? SERVICE.ipv4 : SERVICE.ipv6;
    const common = ['--count', String(c.lookups), '--threads', String(c.threads), '--max-seconds', String(c.maxSeconds)];
    if (c.client === 'gai-glibc' || c.client === 'gai-musl') {
        // getaddrinfo goes to the resolv.conf nameserver (the IPv4 service); --server only checks that.
        return [bin, '--name', LOOKUP_NAME, '--server', SERVICE.ipv4, ...common];
    }
    return [bin, '--server', server, '--name', LOOKUP_NAME, '--timeout-ms', '1000', ...common];
}
export function shaperLabel(s) {
    if (s.kind === 'none')
        return 'no shaper';
    if (s.kind === 'netem')
        return s.placement === 'node-egress' ? 'netem node egress' : 'netem pod egress';
    const extra = s.args?.length ? ` ${s.args.join(' ')}` : '';
    if (s.kind === 'raw')
        return (s.mode === 'pair' ? `raw pair (max ${s.delayMs} ms)` : `raw fixed ${s.delayMs} ms`) + extra;
    return `mangle fixed ${s.delayMs} ms${extra}`;
}
export function daemonArgs(s, metricsHost) {
    const a = [
        'run',
        '--hooks',
        'prerouting',
        '--delay',
        String(s.delayMs),
        '--metrics-listen',
        `${metricsHost}:${METRICS_PORT}`,
    ];
    if (s.kind === 'raw')
        a.push('--mode', s.mode);
    else
        a.push('--mode', 'fixed', '--rules', 'none');
    return [...a, ...(s.args ?? [])];
}
/** The daemon (dist/cli.js) running in the router namespace, plus the mangle rule when asked. */
export class RunningShaper {
    child;
    stderr = '';
    #rl;
    #setup;
    #exit;
    constructor(rl, setup, cli) {
        this.#rl = rl;
        this.#setup = setup;
        this.child = rl.router.spawn([process.execPath, cli, ...daemonArgs(setup, rl.lab.router.clientIpv4)], {
            stdio: ['ignore', 'ignore', 'pipe'],
        });
        this.child.stderr?.setEncoding('utf8');
        this.child.stderr?.on('data', (d) => {
            if (this.stderr.length < 1 << 20)
                this.stderr += d;
        });
        this.#exit = new Promise(r => this.child.once('exit', code => r(code)));
    }
    static async start(rl, setup, cli = CLI_PATH, readyMs = 15_000) {
        const s = new RunningShaper(rl, setup, cli);
        let exited = false;
        void s.#exit.then(() => {
            exited = true;
        });
        const ready = await waitFor(async () => exited || /"msg":"ready"/.test(s.stderr), readyMs, 50);
        if (exited || !ready) {
            await killAndWait(s.child);
            throw new LabError(`dns-shaper did not become ready in ${rl.router.name}: ${s.stderr.trim().slice(-2000)}`, {
                hint: 'build first: npx node-gyp rebuild && npx tsc -p tsconfig.build.json',
            });
        }
        if (setup.kind === 'mangle') {
            await rl.router.execOk(['iptables-restore', '--noflush'], { input: mangleQueueRules() });
            await rl.router.execOk(['ip6tables-restore', '--noflush'], { input: mangleQueueRules() });
        }
        return s;
    }
    /** Counters of the data plane, from its /metrics (curl inside the router namespace). */
    async counters() {
        const url = `http://${this.#rl.lab.router.clientIpv4}:${METRICS_PORT}/metrics`;
        const r = await this.#rl.router.exec(['curl', '-s', '-m', '5', url], { timeoutMs: 8000 });
        return parseShaperMetrics(r.stdout);
    }
    /** Removes the mangle rule (if any), then SIGTERM; resolves with the exit code. */
    async stop() {
        if (this.#setup.kind === 'mangle') {
            await this.#rl.router.exec(['iptables', '-t', 'mangle', '-F', 'PREROUTING']);
            await this.#rl.router.exec(['ip6tables', '-t', 'mangle', '-F', 'PREROUTING']);
        }
        await killAndWait(this.child, 10_000);
        return this.#exit;
    }
}
/** The few shaper counters the race report shows, summed over label sets. */
export function parseShaperMetrics(text) {
    const out = {
        held: 0,
        accepted: 0,
        pairReleased: 0,
        deadlineReleased: 0,
        pairEvictions: 0,
        bypassed: 0,
    };
    for (const line of text.split('\n')) {
        const m = /^(dns_shaper_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
        if (!m)
            continue;
        const [, name, labels = '', v] = m;
        const n = Number(v);
        if (name === 'dns_shaper_packets_total') {
            const action = /action="([a-z]+)"/.exec(labels)?.[1];
            if (action === 'held' || action === 'accepted' || action === 'bypassed')
                out[action] += n;
        }
        else if (name === 'dns_shaper_pair_released_total')
            out['pairReleased'] += n;
        else if (name === 'dns_shaper_deadline_released_total')
            out['deadlineReleased'] += n;
        else if (name === 'dns_shaper_pair_evictions_total')
            out['pairEvictions'] += n;
    }
    return out;
}
const num = (v) => (typeof v === 'number' ? v : null);
/** The row's label: the matrix row letter, the shaper, and stock clash handling when asked for. */
export function rowLabel(sc) {
    const id = sc.id ? `(${sc.id}) ` : '';
    return `${id}${shaperLabel(sc.shaper)}${sc.clash === 'stock' ? ', stock' : ''}`;
}
/** Where a netem row puts the workaround: the router's egress toward the endpoints, or the client's own. */
function netemPlace(rl, s) {
    return s.placement === 'node-egress'
        ? { ns: rl.router, iface: rl.lab.router.serverIface }
        : { ns: rl.client, iface: rl.lab.client.iface };
}
export async function runScenario(rl, bins, sc, cli = CLI_PATH, opts = {}) {
    const bin = bins.bins[sc.client];
    if (!bin)
        throw new LabError(`client ${sc.client} was not built`, {
            hint: sc.client === 'gai-musl' ? 'install musl-tools' : 'see buildClients',
        });
    const service = sc.service ?? 'iptables';
    if (rl.snat !== sc.snat || rl.service !== service)
        await rl.setService(service, sc.snat);
    await flushConntrack(rl.router);
    const netem = sc.shaper.kind === 'netem' ? netemPlace(rl, sc.shaper) : undefined;
    if (netem)
        await applyWorkaround(netem.ns, netem.iface);
    let shaper;
    try {
        if (sc.shaper.kind === 'raw' || sc.shaper.kind === 'mangle')
            shaper = await RunningShaper.start(rl, sc.shaper, cli, 15_000 * (opts.timeScale ?? 1));
    }
    catch (e) {
        if (netem)
            await removeWorkaround(netem.ns, netem.iface);
        throw e;
    }
    let failed = true;
    try {
        const before = await readConntrack(rl.router);
        // gai clients finish the lookup in progress after --max-seconds (libc timeouts: 5 s x 2).
        const r = await rl.client.exec(clientArgv(bin, sc), { timeoutMs: (sc.maxSeconds + 25) * 1000 });
        const after = await readConntrack(rl.router);
        const counters = shaper ? await shaper.counters() : null;
        if (r.code !== 0)
            throw new LabError(`${sc.client} exited ${r.code}: ${r.stderr.trim()}`, { argv: r.argv, stderr: r.stderr });
        const line = r.stdout.trim().split('\n').pop() ?? '';
        const j = JSON.parse(line);
        const d = conntrackCountersDelta(before, after);
        failed = false;
        return {
            id: sc.id ?? null,
            clash: opts.clashNote ?? null,
            shaper: rowLabel(sc),
            service,
            client: sc.client,
            family: sc.family,
            snat: sc.snat,
            lookups: j.lookups,
            failed: j.failed,
            slowOver1s: j.slow_over_1s,
            answersLost: num(j.answers_lost),
            ...d,
            p50Us: j.p50_us,
            p99Us: j.p99_us,
            aP50Us: num(j.a_p50_us),
            aaaaP50Us: num(j.aaaa_p50_us),
            elapsedS: j.elapsed_s,
            shaperCounters: counters,
            raw: j,
        };
    }
    finally {
        if (netem)
            await removeWorkaround(netem.ns, netem.iface);
        // A failed stop is reported only when the run itself succeeded (its error says more).
        const code = shaper ? await shaper.stop() : 0;
        // eslint-disable-next-line no-unsafe-finally -- only when the body succeeded, so no error is masked
        if (code !== 0 && !failed)
            throw new LabError(`dns-shaper exited ${code}: ${shaper?.stderr.trim().slice(-2000)}`);
    }
}
// Fixed rows run with the default kernel filter (A never reaches the queue, so only the wait orders
// the pair) and with it off (every packet through the one thread: its verdict order alone orders it).
const FILTER_OFF = ['--kernel-filter', 'off'];
export const SHAPERS = [
    { kind: 'none' },
    { kind: 'raw', delayMs: 0, mode: 'fixed', args: FILTER_OFF },
    { kind: 'raw', delayMs: 5, mode: 'fixed', args: FILTER_OFF },
    { kind: 'raw', delayMs: 0, mode: 'fixed' },
    { kind: 'raw', delayMs: 1, mode: 'fixed' },
    { kind: 'raw', delayMs: 2, mode: 'fixed' },
    { kind: 'raw', delayMs: 5, mode: 'fixed' },
    { kind: 'raw', delayMs: 5, mode: 'pair' },
    { kind: 'mangle', delayMs: 5 },
];
/** The shapers each non-iptables kube-proxy mode is run with. */
export const MODE_SHAPERS = [
    { kind: 'none' },
    { kind: 'raw', delayMs: 5, mode: 'fixed' },
    { kind: 'raw', delayMs: 5, mode: 'pair' },
];
export function raceMatrix(o = {}) {
    const quick = o.quick ?? false;
    const split = o.splitLookups ?? (quick ? 3000 : 20000);
    const pair = o.pairLookups ?? (quick ? 1000 : 5000);
    const gai = o.gaiLookups ?? (quick ? 500 : 2000);
    const maxSeconds = o.maxSeconds ?? 15;
    const threads = o.splitThreads ?? 1;
    const rows = [];
    const splitRow = (shaper, family, snat) => ({
        shaper,
        client: 'split',
        family,
        lookups: split,
        threads,
        maxSeconds,
        snat,
    });
    const services = o.services ?? ['iptables', 'nftables', 'ipvs'];
    const modeRows = [];
    for (const service of services.filter(s => s !== 'iptables')) {
        for (const snat of [false, true]) {
            for (const shaper of MODE_SHAPERS) {
                modeRows.push({ ...splitRow(shaper, 4, snat), service });
                if (quick)
                    continue;
                for (const client of ['gai-glibc', 'gai-musl'])
                    modeRows.push({ shaper, client, family: 4, lookups: gai, threads: 4, maxSeconds, snat, service });
            }
        }
    }
    if (!services.includes('iptables'))
        return modeRows;
    for (const shaper of SHAPERS)
        rows.push(splitRow(shaper, 4, false));
    const key = [{ kind: 'none' }, { kind: 'raw', delayMs: 5, mode: 'pair' }];
    for (const shaper of key)
        rows.push(splitRow(shaper, 6, false));
    for (const shaper of key)
        rows.push(splitRow(shaper, 4, true));
    if (quick)
        return [...rows, ...modeRows];
    const natural = [
        { kind: 'none' },
        { kind: 'raw', delayMs: 5, mode: 'fixed' },
        { kind: 'raw', delayMs: 5, mode: 'pair' },
        { kind: 'mangle', delayMs: 5 },
    ];
    for (const shaper of natural) {
        rows.push({ shaper, client: 'pair', family: 4, lookups: pair, threads: 4, maxSeconds, snat: false });
        rows.push({ shaper, client: 'gai-glibc', family: 4, lookups: gai, threads: 4, maxSeconds, snat: false });
        rows.push({ shaper, client: 'gai-musl', family: 4, lookups: gai, threads: 4, maxSeconds, snat: false });
    }
    return [...rows, ...modeRows];
}
/**
 * The kernel matrix (`--matrix kernels`, run by `npm run lab:kernels` in a 5.10 guest): rows (a)-(f)
 * of issue 18, each for getaddrinfo (glibc, musl) and split-CPU pairs, IPv4, MASQUERADE off and on.
 * (a)-(e) need pre-5.6 clash handling (lab switch on, or a kernel before 5.6), (f) stock 5.6+.
 */
export const KERNEL_ROWS = [
    { id: 'a', shaper: { kind: 'none' }, clash: 'pre56' },
    { id: 'b', shaper: { kind: 'netem', placement: 'node-egress' }, clash: 'pre56' },
    { id: 'c', shaper: { kind: 'netem', placement: 'pod-egress' }, clash: 'pre56' },
    { id: 'd', shaper: { kind: 'raw', delayMs: 5, mode: 'fixed' }, clash: 'pre56' },
    { id: 'e', shaper: { kind: 'raw', delayMs: 5, mode: 'pair' }, clash: 'pre56' },
    { id: 'f', shaper: { kind: 'none' }, clash: 'stock' },
];
/**
 * Extra kernel-matrix rows, run only when named (`--rows`): they tell a short margin from a broken
 * order when (d) is not clean on a slow guest. (g) every packet through the one thread (kernel
 * filter off), so verdict order alone orders the pair; (h) the same fixed hold as (d), 5x longer.
 */
export const KERNEL_EXTRA_ROWS = [
    { id: 'g', shaper: { kind: 'raw', delayMs: 5, mode: 'fixed', args: ['--kernel-filter', 'off'] }, clash: 'pre56' },
    { id: 'h', shaper: { kind: 'raw', delayMs: 25, mode: 'fixed' }, clash: 'pre56' },
];
export function kernelMatrix(o = {}) {
    const quick = o.quick ?? false;
    // Sized for TCG: a guest runs the stack some 10-30x slower than this host, so counts are small and
    // every row is also bounded by maxSeconds.
    const split = o.splitLookups ?? (quick ? 500 : 1500);
    const gai = o.gaiLookups ?? (quick ? 100 : 300);
    const maxSeconds = o.maxSeconds ?? 12;
    const threads = o.splitThreads ?? 1;
    const clients = quick ? ['split'] : ['gai-glibc', 'gai-musl', 'split'];
    const rows = [];
    const wanted = o.rows ?? KERNEL_ROWS.map(r => r.id);
    for (const r of [...KERNEL_ROWS, ...KERNEL_EXTRA_ROWS].filter(x => wanted.includes(x.id))) {
        for (const snat of [false, true]) {
            for (const client of clients) {
                const split_ = client === 'split';
                rows.push({
                    id: r.id,
                    clash: r.clash,
                    shaper: r.shaper,
                    client,
                    family: 4,
                    lookups: split_ ? split : gai,
                    threads: split_ ? threads : 2,
                    maxSeconds,
                    snat,
                });
            }
        }
    }
    return rows;
}
export async function runRaceMatrix(scenarios, opts = {}) {
    const { release, cpus } = await import('node:os');
    const bins = await buildClients();
    const skipped = [];
    const skip = (why) => {
        skipped.push(why);
        opts.onSkip?.(why);
    };
    const hasSwitch = fsSwitchIo.exists(LAB_SWITCH_PATH);
    // The switch is global to the kernel: put back what was there when the matrix is done.
    const switchBefore = hasSwitch ? fsSwitchIo.read(LAB_SWITCH_PATH).trim() : null;
    let rl;
    try {
        rl = await createRaceLab({ timeScale: opts.timeScale });
        const rows = [];
        // Asked once, when the first IPVS row comes: the check itself makes the kernel try to load ip_vs.
        let ipvs;
        for (const sc of scenarios) {
            const label = `${sc.service ?? 'iptables'} / ${rowLabel(sc)} / ${sc.client} / snat ${sc.snat ? 'on' : 'off'}`;
            if (!bins.bins[sc.client]) {
                skip(`${label}: client not built (musl-gcc missing?)`);
                continue;
            }
            if (sc.service === 'ipvs' && (ipvs ??= await ipvsAvailable(rl.router)) !== true) {
                skip(`${label}: ${ipvs}`);
                continue;
            }
            let clashNote;
            if (sc.clash) {
                const plan = planClashHandling(sc.clash, release(), hasSwitch);
                if (!plan.run) {
                    skip(`${label}: ${plan.reason}`);
                    continue;
                }
                applyClashPlan(plan);
                clashNote = plan.note;
            }
            let row;
            try {
                row = await runScenario(rl, bins, sc, opts.cli, { timeScale: opts.timeScale, clashNote });
            }
            catch (e) {
                if (!(e instanceof NetemUnavailable))
                    throw e;
                skip(`${label}: ${e.message}`);
                continue;
            }
            rows.push(row);
            opts.onRow?.(row);
        }
        return { date: new Date().toISOString(), kernel: release(), cpus: cpus().length, rows, skipped };
    }
    finally {
        await rl?.destroy();
        bins.remove();
        if (switchBefore !== null)
            fsSwitchIo.write(LAB_SWITCH_PATH, switchBefore === 'Y' ? '1' : '0');
    }
}
// ---------------------------------------------------------------------------------------------
// Table
const fmtMs = (us) => (us === null ? '-' : (us / 1000).toFixed(2));
export function tableHeader() {
    return formatCells([
        'shaper',
        'client',
        'service',
        'fam',
        'snat',
        'lookups',
        'failed',
        '>1s',
        'lost',
        'clashres',
        'ins_fail',
        'drop',
        'p50 ms',
        'p99 ms',
        'A p50',
        'AAAA p50',
        'held',
        'pair_rel',
        'deadline',
    ]);
}
export function tableRow(r) {
    return formatCells([
        r.shaper,
        r.client,
        r.service,
        `v${r.family}`,
        r.snat ? 'yes' : 'no',
        String(r.lookups),
        String(r.failed),
        String(r.slowOver1s),
        r.answersLost === null ? '-' : String(r.answersLost),
        String(r.clashResolve),
        String(r.insertFailed),
        String(r.drop),
        fmtMs(r.p50Us),
        fmtMs(r.p99Us),
        fmtMs(r.aP50Us),
        fmtMs(r.aaaaP50Us),
        ...['held', 'pairReleased', 'deadlineReleased'].map(k => r.shaperCounters ? String(r.shaperCounters[k] ?? 0) : '-'),
    ]);
}
const WIDTHS = [22, 10, 12, 4, 5, 8, 7, 5, 6, 9, 9, 5, 8, 8, 7, 8, 6, 8, 8];
function formatCells(cells) {
    return cells.map((c, i) => (i < 3 ? c.padEnd(WIDTHS[i]) : c.padStart(WIDTHS[i]))).join(' ');
}
export function formatTable(rows) {
    return [tableHeader(), ...rows.map(tableRow)].join('\n');
}
//# sourceMappingURL=race.js.map