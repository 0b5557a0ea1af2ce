#pragma once

#include <vector>

namespace ferry::monitoring::drift {

// Sorts finite doubles ascending (what a KLL sketch's level 0 holds): an LSD radix sort
// on the values' order-preserving 64-bit keys, 8 bits a pass, skipping the passes whose
// byte is the same in every value (the sign and exponent bytes of data in a narrow
// range). For the hundreds to thousands of values a sketch sorts at a time it runs in a
// fraction of a comparison sort's time, whose branches mispredict on random input. Short
// inputs go to std::sort. -0.0 sorts before 0.0 (std::sort leaves equal ones in any
// order). `scratch` is a buffer the caller may keep between calls (contents meaningless).
// REQUIRES: no NaN.
// Thread-safety: stateless.
void SortDoubles(std::vector<double>* values, std::vector<double>* scratch);

}  // namespace ferry::monitoring::drift
