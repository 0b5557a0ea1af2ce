#include "batch/parquet_output.h"

#include <cstring>

#include <arrow/api.h>
#include <arrow/io/interfaces.h>
#include <parquet/arrow/writer.h>
#include <parquet/exception.h>
#include <parquet/file_writer.h>
#include <parquet/metadata.h>

#include "core/float16.h"

namespace ferry::batch {
namespace {

// An output stream into memory that reports positions as if `base` bytes came before
// it: the Parquet writer records page offsets from Tell(), so a row group encoded here
// carries the offsets it will have in the real file. Tell() is 0 until the first write,
// because the writer takes a stream that does not start at 0 for an append, which it
// refuses; its first write is the 4-byte magic, which `base` accounts for.
class PlacedBuffer : public arrow::io::OutputStream {
 public:
  explicit PlacedBuffer(int64_t base) : base_(base) {}
  arrow::Status Close() override {
    closed_ = true;
    return arrow::Status::OK();
  }
  bool closed() const override { return closed_; }
  arrow::Result<int64_t> Tell() const override {
    return bytes_.empty() ? 0 : base_ + static_cast<int64_t>(bytes_.size());
  }
  arrow::Status Write(const void* data, int64_t n) override {
    bytes_.append(static_cast<const char*>(data), static_cast<size_t>(n));
    return arrow::Status::OK();
  }
  std::string& bytes() { return bytes_; }

 private:
  int64_t base_;
  std::string bytes_;
  bool closed_ = false;
};

std::shared_ptr<arrow::DataType> ArrowType(DataType t) {
  switch (t) {
    case DataType::kBool: return arrow::boolean();
    case DataType::kUint8: return arrow::uint8();
    case DataType::kUint16: return arrow::uint16();
    case DataType::kUint32: return arrow::uint32();
    case DataType::kUint64: return arrow::uint64();
    case DataType::kInt8: return arrow::int8();
    case DataType::kInt16: return arrow::int16();
    case DataType::kInt32: return arrow::int32();
    case DataType::kInt64: return arrow::int64();
    case DataType::kFp16: return arrow::float16();
    case DataType::kBf16:
    case DataType::kFp32: return arrow::float32();
    case DataType::kFp64: return arrow::float64();
    case DataType::kBytes: return arrow::utf8();
    default: return nullptr;
  }
}

// Runs an Arrow/Parquet call that may throw ParquetException.
template <typename F>
Status Guarded(const char* what, F&& f) {
  try {
    arrow::Status st = f();
    if (!st.ok()) return Internal(std::string(what) + ": " + st.ToString());
  } catch (const std::exception& e) {
    return Internal(std::string(what) + ": " + e.what());
  }
  return Status::Ok();
}

}  // namespace

struct ParquetOutput::Impl {
  std::shared_ptr<arrow::Schema> schema;
  std::shared_ptr<parquet::WriterProperties> props;
  bool carried_is_json = false;
  size_t ncarry = 0;
  std::vector<arrow::StringBuilder> carried;  // one per carried column
  struct Column {
    size_t output = 0;   // index into the tensors
    size_t element = 0;  // element within the output's row
    DataType datatype = DataType::kInvalid;
    std::string values;  // raw little-endian values (BF16 widened to float, BOOL one byte each)
    arrow::StringBuilder strings;  // BYTES: the elements
  };
  std::vector<Column> columns;

  // Writes a whole file (magic, row groups of `table` if any, footer) at `base`.
  Result<std::pair<std::string, std::shared_ptr<parquet::FileMetaData>>> Encode(const arrow::Table* table,
                                                                               int64_t base) const {
    auto sink = std::make_shared<PlacedBuffer>(base);
    std::shared_ptr<parquet::FileMetaData> meta;
    FERRY_RETURN_IF_ERROR(Guarded("cannot encode a Parquet row group", [&]() -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto w, parquet::arrow::FileWriter::Open(*schema, arrow::default_memory_pool(), sink, props));
      if (table) ARROW_RETURN_NOT_OK(w->WriteTable(*table, std::max<int64_t>(1, table->num_rows())));
      ARROW_RETURN_NOT_OK(w->Close());
      meta = w->metadata();
      return arrow::Status::OK();
    }));
    return std::make_pair(std::move(sink->bytes()), std::move(meta));
  }
};

ParquetOutput::~ParquetOutput() = default;

Result<std::unique_ptr<ParquetOutput>> ParquetOutput::Create(const OutputWriter& writer,
                                                             std::vector<std::string> carry_names,
                                                             bool carried_is_json) {
  std::unique_ptr<ParquetOutput> p(new ParquetOutput());
  p->impl_ = std::make_unique<Impl>();
  Impl& m = *p->impl_;
  arrow::FieldVector fields;
  for (const auto& c : carry_names) fields.push_back(arrow::field(c, arrow::utf8(), /*nullable=*/false));
  for (const auto& [name, output] : writer.OutputColumns()) {
    const ModelOutput& o = writer.outputs()[output];
    auto type = ArrowType(o.datatype);
    if (!type)
      return InvalidArgument("output '" + o.name + "': datatype " + std::string(DataTypeName(o.datatype)) +
                             " cannot be written to Parquet; leave it out with --outputs");
    Impl::Column col;
    col.output = output;
    col.element = m.columns.empty() || m.columns.back().output != output ? 0 : m.columns.back().element + 1;
    col.datatype = o.datatype;
    m.columns.push_back(std::move(col));
    fields.push_back(arrow::field(name, type, /*nullable=*/false));
  }
  m.schema = arrow::schema(std::move(fields));
  m.props = parquet::WriterProperties::Builder().compression(parquet::Compression::SNAPPY)->build();
  m.ncarry = carry_names.size();
  m.carried.resize(m.ncarry);
  m.carried_is_json = carried_is_json;
  return p;
}

void ParquetOutput::AppendRow(const std::string* carried, const std::vector<const Tensor*>& outputs,
                              const CheckedOutputs& checked, size_t r) {
  const std::vector<size_t>& widths = checked.widths;
  Impl& m = *impl_;
  for (size_t c = 0; c < m.ncarry; ++c) {
    const std::string text = CarriedText(carried[c], m.carried_is_json);
    (void)m.carried[c].Append(text);
  }
  for (auto& col : m.columns) {
    if (col.datatype == DataType::kBytes) {
      (void)col.strings.Append(checked.strings[col.output][r * widths[col.output] + col.element]);
      continue;
    }
    const size_t esz = DataTypeSize(col.datatype);
    const std::byte* src = outputs[col.output]->data() + (r * widths[col.output] + col.element) * esz;
    if (col.datatype == DataType::kBf16) {
      uint16_t bits;
      std::memcpy(&bits, src, sizeof(bits));
      const float f = Bf16ToFloat(bits);
      col.values.append(reinterpret_cast<const char*>(&f), sizeof(f));
    } else {
      col.values.append(reinterpret_cast<const char*>(src), esz);
    }
  }
  ++buffered_;
}

Result<ParquetOutput::RowGroup> ParquetOutput::FlushRowGroup(uint64_t offset) {
  Impl& m = *impl_;
  if (offset < 4) return Internal("a Parquet row group starts after the magic, at byte 4 or later");
  const auto n = static_cast<int64_t>(buffered_);
  arrow::ArrayVector arrays;
  for (auto& b : m.carried) {
    std::shared_ptr<arrow::Array> a;
    FERRY_RETURN_IF_ERROR(Guarded("cannot build a Parquet column", [&] { return b.Finish(&a); }));
    arrays.push_back(std::move(a));
  }
  for (auto& col : m.columns) {
    if (col.datatype == DataType::kBytes) {
      std::shared_ptr<arrow::Array> a;
      FERRY_RETURN_IF_ERROR(Guarded("cannot build a Parquet column", [&] { return col.strings.Finish(&a); }));
      arrays.push_back(std::move(a));
    } else if (col.datatype == DataType::kBool) {
      arrow::BooleanBuilder b;
      std::shared_ptr<arrow::Array> a;
      FERRY_RETURN_IF_ERROR(Guarded("cannot build a Parquet column", [&]() -> arrow::Status {
        ARROW_RETURN_NOT_OK(b.Reserve(n));
        for (char v : col.values) b.UnsafeAppend(v != 0);
        return b.Finish(&a);
      }));
      arrays.push_back(std::move(a));
    } else {
      auto type = ArrowType(col.datatype);
      auto data = arrow::ArrayData::Make(type, n, {nullptr, arrow::Buffer::FromString(std::move(col.values))}, 0);
      arrays.push_back(arrow::MakeArray(std::move(data)));
    }
    col.values.clear();
  }
  buffered_ = 0;
  auto table = arrow::Table::Make(m.schema, std::move(arrays), n);
  // The encoded file's magic sits 4 bytes before `offset`, where the real file has the
  // previous row group's end (or its own magic).
  FERRY_ASSIGN_OR_RETURN(auto encoded, m.Encode(table.get(), static_cast<int64_t>(offset) - 4));
  auto& [bytes, meta] = encoded;
  // bytes = "PAR1" | column chunks | footer | footer length (4) | "PAR1"
  uint32_t footer_len = 0;
  if (bytes.size() < 12) return Internal("the Parquet writer wrote a file too short to hold a footer");
  std::memcpy(&footer_len, bytes.data() + bytes.size() - 8, 4);
  if (footer_len + 12 > bytes.size()) return Internal("the Parquet writer's footer length is past its file");
  RowGroup g;
  g.data = bytes.substr(4, bytes.size() - 12 - footer_len);
  g.metadata = bytes.substr(bytes.size() - 8 - footer_len, footer_len);
  return g;
}

Result<std::string> ParquetOutput::Footer(const std::vector<std::string>& metadata) const {
  // The schema-only footer of an empty file, then every row group appended to it.
  FERRY_ASSIGN_OR_RETURN(auto empty, impl_->Encode(nullptr, 0));
  std::shared_ptr<parquet::FileMetaData> footer = empty.second;
  for (size_t i = 0; i < metadata.size(); ++i) {
    Status s = Guarded("row group metadata", [&] {
      auto part = parquet::FileMetaData::Make(metadata[i].data(), static_cast<int64_t>(metadata[i].size()));
      footer->AppendRowGroups(*part);
      return arrow::Status::OK();
    });
    if (!s.ok()) return InvalidArgument("row group " + std::to_string(i) + " of the Parquet output: " + s.message());
  }
  PlacedBuffer out(0);
  FERRY_RETURN_IF_ERROR(Guarded("cannot write the Parquet footer", [&] {
    parquet::WriteFileMetaData(*footer, &out);
    return arrow::Status::OK();
  }));
  return std::move(out.bytes());
}

}  // namespace ferry::batch
