// Error classes, type guards and operator-facing wording for failures. No I/O, no process exit (only cli.ts exits).
/**
 * A failure whose message is already the operator's one line (what failed, what to do). Each subclass
 * fixes its exit status, so the CLI maps an error to its exit code in one place (exitCodeFor).
 */
export class OperatorError extends Error {
}
/** Bad flag, env var or config file value. The CLI exits 2 with `message` as its one line. */
export class ConfigError extends OperatorError {
    name = 'ConfigError';
    cliExitCode = 2;
    /** The flag as an operator types it, e.g. '--dns-ip'. */
    flag;
    /** Human description of what is accepted, e.g. 'prerouting,output'. */
    accepted;
    constructor(flag, problem, accepted, options) {
        super(`${flag}: ${problem}${accepted !== undefined ? ` (accepted: ${accepted})` : ''}`, options);
        this.flag = flag;
        this.accepted = accepted;
    }
}
export function isConfigError(e) {
    return e instanceof ConfigError;
}
/** A Node system error (errno-ish: string `code` such as 'ENOENT'). */
export function isErrnoException(e) {
    return e instanceof Error && typeof e.code === 'string';
}
/** Exit status the CLI uses for an error: the operator error's own (2 for configuration), else 1. */
export function exitCodeFor(e) {
    return e instanceof OperatorError ? e.cliExitCode : 1;
}
/** The message of anything thrown. */
export function errorMessage(e) {
    return e instanceof Error ? e.message : String(e);
}
export const PRIVILEGE_HINT = 'run as root or with CAP_NET_ADMIN and CAP_NET_RAW';
const ERRNO_HINTS = {
    EACCES: `permission denied: ${PRIVILEGE_HINT}`,
    EPERM: `operation not permitted: ${PRIVILEGE_HINT}`,
    EADDRINUSE: 'address already in use: another process listens there; pick another address or stop it',
    EADDRNOTAVAIL: 'address not available on this host: use an address of a local interface',
    EBUSY: 'resource busy: another process holds it (for an NFQUEUE: another program is bound to the queue number)',
    ENOMEM: 'out of memory (or a kernel limit such as net.core.rmem_max/locked memory was hit)',
    ENOBUFS: 'kernel ran out of buffer space: raise the socket buffer or reduce load',
    ETIMEDOUT: 'timed out',
    EPROTONOSUPPORT: 'protocol not supported by this kernel: load the module (e.g. nfnetlink_queue) or use a kernel that has it',
    EAFNOSUPPORT: 'address family not supported by this kernel (IPv6 disabled?)',
    EINVAL: 'invalid argument',
    EMFILE: 'too many open files: raise the file descriptor limit (ulimit -n)',
    ENFILE: 'too many open files system-wide',
};
/**
 * One line for an operator from an errno-ish failure: what failed, why, what to do.
 * Unknown errors keep their own message.
 */
export function describeError(e, ctx = {}) {
    const prefix = ctx.action !== undefined ? `${ctx.action}: ` : '';
    if (e instanceof OperatorError)
        return prefix + e.message;
    if (isErrnoException(e)) {
        const code = e.code ?? '';
        if (code === 'ENOENT') {
            if (e.syscall !== undefined && e.syscall.startsWith('spawn')) {
                const program = e.path ?? e.syscall.slice('spawn '.length);
                return `${prefix}${program} not found${ctx.install !== undefined ? `: ${ctx.install}` : ' in PATH'}`;
            }
            return `${prefix}${e.path ?? 'file'} does not exist`;
        }
        const hint = ERRNO_HINTS[code];
        if (hint !== undefined) {
            const where = e.path !== undefined ? ` (${e.path})` : '';
            return `${prefix}${hint}${where} [${code}]`;
        }
        return `${prefix}${e.message}`;
    }
    if (e instanceof Error)
        return prefix + e.message;
    return prefix + String(e);
}
//# sourceMappingURL=errors.js.map