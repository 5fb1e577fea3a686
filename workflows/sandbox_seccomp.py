"""A seccomp denylist for the code-node sandbox, as the classic BPF program `bwrap --seccomp FD` loads.

Defense in depth under the namespaces: the syscalls refused here have no use for a stdlib Python script and are
where kernel exploits usually start (keyrings, bpf, io_uring, userfaultfd, perf, ptrace, mount APIs, modules).
They fail with EPERM; any other ABI than the native one (i386 or x32 calls on x86_64) is refused as a whole.
Numbers are from the kernel's uapi headers; on another architecture there is no filter (SANDBOX.md says so).
"""

import platform
import struct

_DENIED = ("keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup",
           "io_uring_enter", "io_uring_register", "ptrace", "process_vm_readv", "process_vm_writev", "kexec_load",
           "kexec_file_load", "init_module", "finit_module", "delete_module", "mount", "umount2", "pivot_root",
           "unshare", "setns", "chroot", "personality", "acct", "swapon", "swapoff", "reboot", "syslog",
           "quotactl", "open_by_handle_at", "name_to_handle_at", "fsopen", "fsmount", "move_mount", "open_tree",
           "fsconfig", "fspick", "mount_setattr")

# (AUDIT_ARCH_*, first number of a foreign ABI to refuse or None, {name: number})
_ARCHES = {
    "x86_64": (0xC000003E, 0x40000000, dict(zip(_DENIED, (
        250, 248, 249, 321, 298, 323, 425, 426, 427, 101, 310, 311, 246, 320, 175, 313, 176, 165, 166, 155, 272, 308,
        161, 135, 163, 167, 168, 169, 103, 179, 304, 303, 430, 432, 429, 428, 431, 433, 442), strict=True))),
    "aarch64": (0xC00000B7, None, dict(zip(_DENIED, (
        219, 217, 218, 280, 241, 282, 425, 426, 427, 117, 270, 271, 104, 294, 105, 273, 106, 40, 39, 41, 97, 268, 51,
        92, 89, 224, 225, 142, 116, 60, 265, 264, 430, 432, 429, 428, 431, 433, 442), strict=True))),
}

_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_ALLOW, _EPERM = 0x7FFF0000, 0x00050000 | 1
_NR, _ARCH = 0, 4  # offsets in struct seccomp_data


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def program(*, machine: str | None = None) -> bytes | None:
    """The filter for this machine's architecture, or None where there is none."""
    arch = _ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, foreign, numbers = arch
    denied = sorted(set(numbers.values()))
    # Layout: arch check, load nr, [foreign ABI check], one jeq per denied nr, ret ALLOW, ret EPERM.
    insns = [_insn(_LD_W_ABS, _ARCH), _insn(_JEQ_K, audit_arch, jt=1), _insn(_RET_K, _EPERM), _insn(_LD_W_ABS, _NR)]
    if foreign is not None:
        insns.append(_insn(_JGE_K, foreign, jt=len(denied) + 1))
    for i, nr in enumerate(denied):
        insns.append(_insn(_JEQ_K, nr, jt=len(denied) - i))
    insns += [_insn(_RET_K, _ALLOW), _insn(_RET_K, _EPERM)]
    return b"".join(insns)
