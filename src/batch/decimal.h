#pragma once

namespace ferry::batch {

// Reads a plain decimal number at the start of [p, end): "-12.5", "3", ".5", "1.25e-7"
// (an optional '-', digits with an optional '.', an optional exponent). Returns the
// position just past it with the value in *out, giving exactly what std::from_chars
// gives (the correctly rounded value) -- or nullptr when this fast path does not decide:
// no such number at p, more than 19 digits, a decimal exponent past +-22, a float
// result outside the normal range, or a value whose rounding it cannot prove. The
// caller then uses std::from_chars, which takes every case.
// Why: libstdc++'s from_chars spends most of a CSV job's parse time on a float32
// column; this is Clinger's exact fast path (an integer mantissa below 2^53 times or
// divided by an exact power of ten rounds once, correctly), which covers the numbers
// that writers like "%.9g" and to_chars produce.
// Thread-safety: a pure function.
const char* ParseDecimal(const char* p, const char* end, float* out);
const char* ParseDecimal(const char* p, const char* end, double* out);

}  // namespace ferry::batch
