// ParquetOutput in a build without FERRY_WITH_PARQUET: Create says how to get it.
#include "batch/parquet_output.h"

namespace ferry::batch {

struct ParquetOutput::Impl {};

ParquetOutput::~ParquetOutput() = default;

Result<std::unique_ptr<ParquetOutput>> ParquetOutput::Create(const OutputWriter&, std::vector<std::string>, bool) {
  return Status(StatusCode::kUnimplemented,
                "a .parquet output needs Parquet support, and this ferry was built without it (FERRY_WITH_PARQUET; "
                "tools/pyarrow/install.sh installs what it needs, then reconfigure)");
}
void ParquetOutput::AppendRow(const std::string*, const std::vector<const Tensor*>&, const CheckedOutputs&, size_t) {}
Result<ParquetOutput::RowGroup> ParquetOutput::FlushRowGroup(uint64_t) {
  return Status(StatusCode::kUnimplemented, "no Parquet support");
}
Result<std::string> ParquetOutput::Footer(const std::vector<std::string>&) const {
  return Status(StatusCode::kUnimplemented, "no Parquet support");
}

}  // namespace ferry::batch
