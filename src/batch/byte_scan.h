#pragma once

#include <cstddef>

namespace ferry::batch {

// Finds every occurrence of `byte` in [begin, end), in order: the cell boundaries of a
// CSV line. Writes their positions to out[0..], and returns how many there are when
// that is at most `cap`; past `cap` it stops early and returns some count above `cap`.
// REQUIRES: out has room for cap + 64 entries (whole 64-byte blocks are written at once).
// Why: a CSV line of a feature table is thousands of bytes of short cells; scanning it
// 64 bytes per step (one mask from four SSE2 or two AVX2 compares) finds all cell ends up front, so the
// cells can then be parsed independently of each other, rather than each from where the
// parse of the one before stopped.
// With AVX2 (and BMI1, POPCNT) where the CPU has them, SSE2 (the x86-64 baseline) elsewhere.
// Thread-safety: a pure function.
size_t FindByte(const char* begin, const char* end, char byte, const char** out, size_t cap);

namespace byte_scan_internal {
// FindByte's two paths, for tests; FindByteAvx2 only where HasAvx2().
size_t FindByteSse2(const char* begin, const char* end, char byte, const char** out, size_t cap);
size_t FindByteAvx2(const char* begin, const char* end, char byte, const char** out, size_t cap);
bool HasAvx2();
}  // namespace byte_scan_internal

}  // namespace ferry::batch
