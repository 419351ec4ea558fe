// Conntrack clash handling for a race-lab row: pre-5.6 (the loser is dropped) or stock (5.6+ inserts it).
// Uses the kernel lab's switch (nf_conntrack.lab_pre56_clash, lab/kernels/*.patch) when the kernel has it,
// otherwise the kernel's own version decides what it can show. It writes only that one lab-kernel parameter.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
export const LAB_SWITCH_PATH = '/sys/module/nf_conntrack/parameters/lab_pre56_clash';
/** "5.10.0-lab" -> [5, 10]; null when unreadable. */
export function kernelVersion(release) {
    const m = /^(\d+)\.(\d+)/.exec(release);
    return m ? [Number(m[1]), Number(m[2])] : null;
}
/** Before 5.6 a clash whose tuples differ (DNAT to two endpoints) is dropped; 5.6 added the insertion. */
export function nativelyPre56(release) {
    const v = kernelVersion(release);
    return v === null ? null : v[0] < 5 || (v[0] === 5 && v[1] < 6);
}
/** Decides how a row asking for `want` runs on this kernel: via the switch, natively, or not at all. */
export function planClashHandling(want, release, hasSwitch) {
    if (hasSwitch)
        return want === 'pre56'
            ? { run: true, write: '1', note: 'lab switch lab_pre56_clash=1' }
            : { run: true, write: '0', note: 'lab switch lab_pre56_clash=0 (stock)' };
    const pre = nativelyPre56(release);
    if (pre === null)
        return { run: false, reason: `cannot tell the clash handling of kernel ${release}` };
    if (want === 'pre56' && !pre)
        return {
            run: false,
            reason: `kernel ${release} resolves DNAT clashes (5.6+) and has no lab switch; run npm run lab:kernels`,
        };
    if (want === 'stock' && pre)
        return {
            run: false,
            reason: `kernel ${release} is before 5.6 and has no lab switch: no stock 5.6+ handling to show`,
        };
    return { run: true, write: null, note: `kernel ${release} as it is` };
}
export const fsSwitchIo = {
    exists: p => existsSync(p),
    read: p => readFileSync(p, 'utf8'),
    write: (p, v) => writeFileSync(p, v),
};
/** Applies a plan; returns what the switch read back ('Y'/'N'), or null without a switch. */
export function applyClashPlan(plan, io = fsSwitchIo) {
    if (!plan.run || plan.write === null)
        return null;
    io.write(LAB_SWITCH_PATH, plan.write);
    const back = io.read(LAB_SWITCH_PATH).trim();
    // A bool module parameter reads back Y/N; anything else means the write did not take.
    if ((plan.write === '1' && back !== 'Y') || (plan.write === '0' && back !== 'N'))
        throw new Error(`${LAB_SWITCH_PATH} reads ${back} after writing ${plan.write}`);
    return back;
}
//# sourceMappingURL=clash-switch.js.map