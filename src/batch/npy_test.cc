#include "batch/npy.h"

#include <gtest/gtest.h>

namespace ferry::batch {
namespace {

std::string V1(const std::string& dict) {
  std::string d = dict;
  while ((10 + d.size() + 1) % 64) d += ' ';
  d += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(d.size() & 0xff);
  out += static_cast<char>(d.size() >> 8);
  return out + d;
}

TEST(Npy, ParsesWhatNumpyWrites) {
  auto h = ParseNpyHeader(V1("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 4), }"));
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->datatype, DataType::kFp32);
  EXPECT_EQ(h->shape, (Shape{100000, 4}));
  EXPECT_EQ(h->data_offset, 128u);
  h = ParseNpyHeader(V1("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }"));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->datatype, DataType::kBool);
  EXPECT_EQ(h->shape, (Shape{3}));
}

TEST(Npy, RefusesWhatItCannotRead) {
  auto msg = [](const std::string& file) { return ParseNpyHeader(file).status().message(); };
  EXPECT_EQ(msg("PK\x03\x04 not npy"), "npy header: not a .npy file (no \\x93NUMPY magic)");
  EXPECT_EQ(msg(V1("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }")),
            "npy header: descr '>f4' is not supported (little-endian bool, int, uint or float, e.g. '<f4')");
  EXPECT_EQ(msg(V1("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }")),
            "npy header: fortran_order True is not supported (save a C-order array)");
  EXPECT_EQ(msg(V1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }")), "npy header: bad shape (2, x)");
  EXPECT_EQ(msg(V1("{'descr': '<f4', 'fortran_order': False, }")), "npy header: no 'shape' key");
  std::string truncated = V1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }");
  EXPECT_EQ(msg(truncated.substr(0, 30)), "npy header: truncated (file shorter than its header)");
}

TEST(Npy, FormatRoundTripsAtAFixedLength) {
  auto a = FormatNpyHeader(DataType::kFp32, {0, 3});
  auto b = FormatNpyHeader(DataType::kFp32, {123456789, 3});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 128u);
  EXPECT_EQ(b->size(), 128u);
  auto h = ParseNpyHeader(*b);
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->shape, (Shape{123456789, 3}));
  EXPECT_EQ(h->data_offset, 128u);
  EXPECT_FALSE(FormatNpyHeader(DataType::kBytes, {1}).ok());
}

}  // namespace
}  // namespace ferry::batch
