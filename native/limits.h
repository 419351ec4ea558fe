// Bounds shared by the data plane and TS, defined once here. The addon exports them as `limits`
// (addon.cc), the build emits them as data (native_data.cc -> src/dataplane/constants.ts, limits.ts);
// test/native/constants.ts checks the two agree.
// Only constants: no logic, nothing that allocates.
#pragma once
#include <cstddef>
#include <cstdint>

namespace dns_shaper {

// Distinct hold durations a policy may use; class 0 means "accept at once".
constexpr size_t kMaxHoldClasses = 8;
// Longest hold per class, and longest pair window.
constexpr uint32_t kMaxHoldMs = 10000;
constexpr uint32_t kMaxPairWindowMs = 10000;

// --max-held: packets one queue may hold at once.
constexpr uint32_t kMaxHeld = 1u << 20;
constexpr uint32_t kDefaultMaxHeld = 10000;
// Held-packet slots preallocated per queue (Queue option maxHeld): a policy's maxHeld may rise by
// reload up to this, never above. TS sizes it as kHeldCapacityFactor x --max-held, at least
// kMinHeldCapacity, at most kMaxHeld.
constexpr uint32_t kDefaultHeldCapacity = 65536;
constexpr uint32_t kMinHeldCapacity = 1024;
constexpr uint32_t kHeldCapacityFactor = 4;

// Pair-table slots per queue (a power of two; Queue option pairSlots).
constexpr uint32_t kDefaultPairSlots = 4096;
constexpr uint32_t kMinPairSlots = 16;
constexpr uint32_t kMaxPairSlots = 1u << 20;

// Kernel queue length. Held packets count toward it, and past it FAIL_OPEN passes packets with no id
// gap and no counter, so the data plane keeps it above held capacity + what the socket can buffer.
constexpr uint32_t kDefaultQueueMaxLen = 131072;
constexpr uint32_t kMaxQueueMaxLen = 1u << 23;
// Smallest skb truesize one queued packet message takes in the receive buffer (bytes); bounds how
// many messages the socket can hold unverdicted: rcvbuf / this.
constexpr uint32_t kMinMsgTruesize = 256;

// Receive slot: one datagram of recvmmsg. The copy range is clamped so a packet message (payload +
// attributes) always fits one slot, otherwise it would arrive truncated.
constexpr uint32_t kRecvSlotBytes = 8192;
constexpr uint32_t kRecvSlotHeadroom = 1024;  // nlmsghdr + nfgenmsg + every attribute but the payload
constexpr uint32_t kMaxCopyRange = kRecvSlotBytes - kRecvSlotHeadroom;
constexpr uint32_t kDefaultCopyRange = 512;

// Worst-case preallocation of all queues together that a config may ask for. Half the DaemonSet's
// 256 MiB memory limit (deploy/kubernetes/daemonset.yaml): the rest is Node, V8 and the kernel's
// socket buffers. src/dataplane/limits.ts computes a config's figure from the per-slot sizes exported
// with these bounds.
constexpr uint64_t kMemoryBudgetBytes = 128ull << 20;

}  // namespace dns_shaper
