#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/data_type.h"
#include "core/result.h"
#include "core/shape.h"

namespace ferry::batch {

// The header of a NumPy .npy file (format versions 1.0, 2.0 and 3.0), as np.save
// writes it: magic "\x93NUMPY", version, header length, then a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (n, k), } padded with spaces.
struct NpyHeader {
  DataType datatype = DataType::kInvalid;
  Shape shape;
  size_t data_offset = 0;  // bytes from the start of the file to the first element
};

// Parses the header at the start of `file` (which may hold more than the header).
// Accepts little-endian or byte-order-free descrs of bool, (u)int8..64, float16/32/64,
// C order only. Errors name what is wrong ("npy header: fortran_order True is not
// supported", "npy header: descr '>f4' ...").
Result<NpyHeader> ParseNpyHeader(std::string_view file);

// A version 1.0 header for a C-order array of `datatype` and `shape`, padded with
// spaces to exactly `total_bytes` (a multiple of 64, large enough), so a writer can
// rewrite it in place once the row count is known. INVALID_ARGUMENT when the
// datatype has no .npy descr (BYTES) or the header does not fit.
Result<std::string> FormatNpyHeader(DataType datatype, const Shape& shape, size_t total_bytes = 128);

}  // namespace ferry::batch
