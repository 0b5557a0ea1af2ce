// ParquetInput in a build without FERRY_WITH_PARQUET: Open says how to get it.
#include "batch/parquet_input.h"

namespace ferry::batch {

struct ParquetInput::Impl {};

ParquetInput::~ParquetInput() = default;
int ParquetInput::num_row_groups() const { return 0; }

Result<std::unique_ptr<ParquetInput>> ParquetInput::Open(const std::filesystem::path& path) {
  return Status(StatusCode::kUnimplemented,
                "input '" + path.string() +
                    "': this ferry was built without Parquet support (FERRY_WITH_PARQUET; tools/pyarrow/install.sh "
                    "installs what it needs, then reconfigure)");
}
Status ParquetInput::Seek(uint64_t) { return Status(StatusCode::kUnimplemented, "no Parquet support"); }
bool ParquetInput::Next(std::vector<std::string_view>*, std::vector<uint8_t>*, std::vector<TypedCell>*) {
  return false;
}
bool ParquetInput::NextRun(size_t, ParquetRun*) { return false; }
void ParquetInput::RunRow(size_t, std::vector<std::string_view>*, std::vector<uint8_t>*, std::vector<TypedCell>*) {}
void ParquetInput::AppendRunCell(size_t, size_t, std::string*) const {}

}  // namespace ferry::batch
