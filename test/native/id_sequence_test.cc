// Unit tests of packet-id gap accounting across the 2^32 wrap (issue 14 item 2).
#include "../../native/id_sequence.h"

#include <cstdint>
#include <vector>

#include "unit.h"

using dns_shaper::IdSequence;

namespace {
uint64_t Gaps(uint32_t start_last, const std::vector<uint32_t>& ids) {
  IdSequence s(start_last);
  uint64_t gaps = 0;
  for (uint32_t id : ids) gaps += s.Next(id);
  return gaps;
}
}  // namespace

CASE("ids: a fresh queue starts at 1; 1,2,5 skips 2") {
  EXPECT_EQ(Gaps(0, {1, 2, 5}), 2u);
  EXPECT_EQ(Gaps(0, {3}), 2u);
}

CASE("ids: FFFFFFFD..2 across the wrap: 0 bypassed (0 is a valid id after FFFFFFFF)") {
  EXPECT_EQ(Gaps(0xFFFFFFFC, {0xFFFFFFFD, 0xFFFFFFFE, 0xFFFFFFFF, 0, 1, 2}), 0u);
}

CASE("ids: FFFFFFFE, 0, 1, 100: 99 bypassed") { EXPECT_EQ(Gaps(0xFFFFFFFD, {0xFFFFFFFE, 0, 1, 100}), 99u); }

CASE("ids: after the wrap, real gaps are still counted and consecutive ids are not") {
  IdSequence s(0xFFFFFFF0);
  uint64_t gaps = 0;
  for (uint32_t id = 0xFFFFFFF1; id != 0x10; id++) gaps += s.Next(id);
  EXPECT_EQ(gaps, 0u);
  EXPECT_EQ(s.Next(0x20), 0x10u);  // 0x10..0x1F skipped
  EXPECT_EQ(s.last(), 0x20u);
}

CASE("ids: a duplicate or stale id counts no gap and does not move the sequence back") {
  IdSequence s(0);
  EXPECT_EQ(s.Next(10), 9u);
  EXPECT_EQ(s.Next(10), 0u);
  EXPECT_EQ(s.Next(4), 0u);
  EXPECT_EQ(s.last(), 10u);
  EXPECT_EQ(s.Next(11), 0u);
}

int main() { return unit::RunAll(); }
