#include "batch/parquet_input.h"

#include <algorithm>

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <parquet/arrow/reader.h>
#include <parquet/exception.h>
#include <parquet/file_reader.h>

#include "batch/huge_page_pool.h"
#include "batch/output_writer.h"

namespace ferry::batch {
namespace {

template <typename A>
const std::byte* Raw(const arrow::Array& a) {
  return reinterpret_cast<const std::byte*>(static_cast<const A&>(a).raw_values());
}

// Appends value `i` of `a` (not null) as text: numbers as the output writer writes them.
void AppendCell(const arrow::Array& a, int64_t i, std::string* out) {
  const size_t k = static_cast<size_t>(i);
  switch (a.type_id()) {
    case arrow::Type::BOOL: out->append(static_cast<const arrow::BooleanArray&>(a).Value(i) ? "true" : "false"); return;
    case arrow::Type::INT8: AppendElement(DataType::kInt8, Raw<arrow::Int8Array>(a), k, false, out); return;
    case arrow::Type::INT16: AppendElement(DataType::kInt16, Raw<arrow::Int16Array>(a), k, false, out); return;
    case arrow::Type::INT32: AppendElement(DataType::kInt32, Raw<arrow::Int32Array>(a), k, false, out); return;
    case arrow::Type::INT64: AppendElement(DataType::kInt64, Raw<arrow::Int64Array>(a), k, false, out); return;
    case arrow::Type::UINT8: AppendElement(DataType::kUint8, Raw<arrow::UInt8Array>(a), k, false, out); return;
    case arrow::Type::UINT16: AppendElement(DataType::kUint16, Raw<arrow::UInt16Array>(a), k, false, out); return;
    case arrow::Type::UINT32: AppendElement(DataType::kUint32, Raw<arrow::UInt32Array>(a), k, false, out); return;
    case arrow::Type::UINT64: AppendElement(DataType::kUint64, Raw<arrow::UInt64Array>(a), k, false, out); return;
    case arrow::Type::HALF_FLOAT: AppendElement(DataType::kFp16, Raw<arrow::HalfFloatArray>(a), k, false, out); return;
    case arrow::Type::FLOAT: AppendElement(DataType::kFp32, Raw<arrow::FloatArray>(a), k, false, out); return;
    case arrow::Type::DOUBLE: AppendElement(DataType::kFp64, Raw<arrow::DoubleArray>(a), k, false, out); return;
    case arrow::Type::STRING: {
      auto v = static_cast<const arrow::StringArray&>(a).GetView(i);
      out->append(v.data(), v.size());
      return;
    }
    case arrow::Type::LARGE_STRING: {
      auto v = static_cast<const arrow::LargeStringArray&>(a).GetView(i);
      out->append(v.data(), v.size());
      return;
    }
    case arrow::Type::STRING_VIEW: {
      auto v = static_cast<const arrow::StringViewArray&>(a).GetView(i);
      out->append(v.data(), v.size());
      return;
    }
    case arrow::Type::DICTIONARY: {  // a categorical column: the value its index names
      const auto& d = static_cast<const arrow::DictionaryArray&>(a);
      const int64_t at = d.GetValueIndex(i);
      if (!d.dictionary()->IsNull(at)) AppendCell(*d.dictionary(), at, out);
      return;
    }
    default: {
      auto s = a.GetScalar(i);
      out->append(s.ok() ? (*s)->ToString() : std::string());
      return;
    }
  }
}

// Element `i` of a numeric array as a typed cell; data null for other types (booleans
// are bits, not bytes).
TypedCell TypedOf(const arrow::Array& a, int64_t i) {
  const auto k = static_cast<size_t>(i);
  auto at = [k](const std::byte* base, DataType t) { return TypedCell{t, base + k * DataTypeSize(t)}; };
  switch (a.type_id()) {
    case arrow::Type::INT8: return at(Raw<arrow::Int8Array>(a), DataType::kInt8);
    case arrow::Type::INT16: return at(Raw<arrow::Int16Array>(a), DataType::kInt16);
    case arrow::Type::INT32: return at(Raw<arrow::Int32Array>(a), DataType::kInt32);
    case arrow::Type::INT64: return at(Raw<arrow::Int64Array>(a), DataType::kInt64);
    case arrow::Type::UINT8: return at(Raw<arrow::UInt8Array>(a), DataType::kUint8);
    case arrow::Type::UINT16: return at(Raw<arrow::UInt16Array>(a), DataType::kUint16);
    case arrow::Type::UINT32: return at(Raw<arrow::UInt32Array>(a), DataType::kUint32);
    case arrow::Type::UINT64: return at(Raw<arrow::UInt64Array>(a), DataType::kUint64);
    case arrow::Type::HALF_FLOAT: return at(Raw<arrow::HalfFloatArray>(a), DataType::kFp16);
    case arrow::Type::FLOAT: return at(Raw<arrow::FloatArray>(a), DataType::kFp32);
    case arrow::Type::DOUBLE: return at(Raw<arrow::DoubleArray>(a), DataType::kFp64);
    default: return {};
  }
}

ValueKind KindOf(const arrow::DataType& t) {
  switch (t.id()) {
    case arrow::Type::INT8: case arrow::Type::INT16: case arrow::Type::INT32: case arrow::Type::INT64:
    case arrow::Type::UINT8: case arrow::Type::UINT16: case arrow::Type::UINT32: case arrow::Type::UINT64:
    case arrow::Type::HALF_FLOAT: case arrow::Type::FLOAT: case arrow::Type::DOUBLE:
      return ValueKind::kNumber;
    case arrow::Type::BOOL: return ValueKind::kBool;
    case arrow::Type::STRING: case arrow::Type::LARGE_STRING: case arrow::Type::STRING_VIEW:
    case arrow::Type::DECIMAL32: case arrow::Type::DECIMAL64: case arrow::Type::DECIMAL128: case arrow::Type::DECIMAL256:
      return ValueKind::kText;
    case arrow::Type::DICTIONARY: {
      // Its values come as text (AppendCell), so numbers in it are text too.
      const ValueKind k = KindOf(*static_cast<const arrow::DictionaryType&>(t).value_type());
      return k == ValueKind::kNumber ? ValueKind::kText : k;
    }
    default: return ValueKind::kOther;
  }
}

}  // namespace

// One column of the record batch in hand, looked up once per batch rather than per cell:
// RecordBatch::column takes a lock and returns a shared_ptr, which cost more per cell than
// reading the value.
struct ColumnView {
  const arrow::Array* array = nullptr;
  bool may_be_null = false;
  TypedCell first;       // element 0 when numeric (data null otherwise)
  size_t element_size = 0;
};

struct ParquetInput::Impl {
  std::unique_ptr<parquet::arrow::FileReader> reader;
  std::vector<uint64_t> group_start;  // first row of each row group
  std::unique_ptr<arrow::RecordBatchReader> batches;
  std::shared_ptr<arrow::RecordBatch> batch;
  std::vector<ColumnView> columns;  // batch's
  int64_t batch_row = 0;  // next row in `batch`
  int64_t run_start = 0;  // the last run's first row in `batch`
  uint64_t batch_first = 0;           // file row of `batch`'s first row
  uint64_t next_row_after_batch = 0;  // file row of the next record batch's first
  ParquetRun one;         // Next's run of one row
  uint64_t skip = 0;      // rows still to pass over after a Seek
  std::vector<std::string> text;  // one cell's text per column
};

ParquetInput::~ParquetInput() = default;

int ParquetInput::num_row_groups() const { return impl_->reader->num_row_groups(); }

Result<std::unique_ptr<ParquetInput>> ParquetInput::Open(const std::filesystem::path& path) {
  const std::string name = "input '" + path.string() + "'";
  std::unique_ptr<ParquetInput> p(new ParquetInput());
  p->impl_ = std::make_unique<Impl>();
  // Memory-mapped: the column chunks are read in place, as slices of the page cache,
  // rather than copied into buffers first (by read(), or by pre-buffering the whole row
  // group); pages and dictionaries decode into HugePagePool (see there for why).
  auto file = arrow::io::MemoryMappedFile::Open(path.string(), arrow::io::FileMode::READ);
  if (!file.ok()) return InvalidArgument(name + ": " + file.status().message());
  std::unique_ptr<parquet::arrow::FileReader> reader;
  try {
    parquet::ReaderProperties properties(HugePagePool::Get());
    parquet::ArrowReaderProperties arrow_properties;
    arrow_properties.set_pre_buffer(false);
    arrow_properties.set_batch_size(kBatchRows);
    parquet::arrow::FileReaderBuilder builder;
    arrow::Status st = builder.Open(*file, properties);
    if (!st.ok()) return InvalidArgument(name + ": not a readable Parquet file: " + st.message());
    builder.memory_pool(HugePagePool::Get())->properties(arrow_properties);
    auto r = builder.Build();
    if (!r.ok()) return InvalidArgument(name + ": not a readable Parquet file: " + r.status().message());
    reader = std::move(*r);
  } catch (const parquet::ParquetException& e) {
    return InvalidArgument(name + ": not a readable Parquet file: " + e.what());
  }
  reader->set_batch_size(kBatchRows);
  std::shared_ptr<arrow::Schema> schema;
  arrow::Status st = reader->GetSchema(&schema);
  if (!st.ok()) return InvalidArgument(name + ": cannot map its schema to Arrow: " + st.message());
  for (const auto& f : schema->fields()) {
    for (const auto& n : p->names_)
      if (n == f->name()) return InvalidArgument(name + ": column '" + n + "' appears twice");
    p->names_.push_back(f->name());
    p->types_.push_back(f->type()->ToString());
    p->kinds_.push_back(KindOf(*f->type()));
  }
  if (p->names_.empty()) return InvalidArgument(name + ": the Parquet schema has no columns");
  auto meta = reader->parquet_reader()->metadata();
  uint64_t start = 0;
  for (int g = 0; g < meta->num_row_groups(); ++g) {
    p->impl_->group_start.push_back(start);
    start += static_cast<uint64_t>(meta->RowGroup(g)->num_rows());
  }
  p->num_rows_ = start;
  p->impl_->text.resize(p->names_.size());
  p->impl_->reader = std::move(reader);
  FERRY_RETURN_IF_ERROR(p->Seek(0));
  return p;
}

Status ParquetInput::Seek(uint64_t row) {
  if (row > num_rows_)
    return InvalidArgument("row " + std::to_string(row) + " is past the Parquet input's " + std::to_string(num_rows_) + " rows");
  Impl& m = *impl_;
  m.batches.reset();
  m.batch.reset();
  m.batch_row = 0;
  error_ = Status::Ok();
  // The row group holding `row`: the last one starting at or before it.
  int g = 0;
  while (g + 1 < static_cast<int>(m.group_start.size()) && m.group_start[static_cast<size_t>(g) + 1] <= row) ++g;
  std::vector<int> groups;
  for (int i = g; i < static_cast<int>(m.group_start.size()); ++i) groups.push_back(i);
  m.skip = groups.empty() ? 0 : row - m.group_start[static_cast<size_t>(g)];
  m.next_row_after_batch = groups.empty() ? num_rows_ : m.group_start[static_cast<size_t>(g)];
  if (groups.empty()) return Status::Ok();
  try {
    auto r = m.reader->GetRecordBatchReader(groups);
    if (!r.ok()) return InvalidArgument("Parquet input: " + r.status().message());
    m.batches = std::move(*r);
  } catch (const parquet::ParquetException& e) {
    return InvalidArgument(std::string("Parquet input: ") + e.what());
  }
  return Status::Ok();
}

bool ParquetInput::NextRun(size_t max_rows, ParquetRun* run) {
  Impl& m = *impl_;
  while (true) {
    if (m.batch && m.batch_row < m.batch->num_rows()) {
      if (m.skip > 0) {
        const int64_t n = std::min<int64_t>(static_cast<int64_t>(m.skip), m.batch->num_rows() - m.batch_row);
        m.batch_row += n;
        m.skip -= static_cast<uint64_t>(n);
        continue;
      }
      break;
    }
    if (!m.batches || !error_.ok()) return false;
    arrow::Status st;
    try {
      st = m.batches->ReadNext(&m.batch);
    } catch (const parquet::ParquetException& e) {
      st = arrow::Status::IOError(e.what());
    }
    if (!st.ok()) {
      error_ = InvalidArgument("Parquet input: " + st.message());
      m.batch.reset();
      return false;
    }
    m.batch_row = 0;
    if (!m.batch) {
      m.batches.reset();
      return false;
    }
    m.batch_first = m.next_row_after_batch;
    m.next_row_after_batch += static_cast<uint64_t>(m.batch->num_rows());
    m.columns.assign(names_.size(), ColumnView{});
    for (size_t c = 0; c < names_.size(); ++c) {
      const arrow::Array& a = *m.batch->column(static_cast<int>(c));
      ColumnView& v = m.columns[c];
      v.array = &a;
      v.may_be_null = a.null_count() != 0;
      v.first = TypedOf(a, 0);
      v.element_size = DataTypeSize(v.first.type);
    }
  }
  const int64_t n = std::min<int64_t>(static_cast<int64_t>(std::max<size_t>(max_rows, 1)),
                                      m.batch->num_rows() - m.batch_row);
  m.run_start = m.batch_row;
  m.batch_row += n;
  run->first = m.batch_first + static_cast<uint64_t>(m.run_start);
  run->rows = static_cast<size_t>(n);
  run->columns.resize(names_.size());
  for (size_t c = 0; c < names_.size(); ++c) {
    const ColumnView& v = m.columns[c];
    ParquetRun::Column& out = run->columns[c];
    out.values = v.first;
    if (out.values.data != nullptr) out.values.data += static_cast<size_t>(m.run_start) * v.element_size;
    out.validity = v.may_be_null ? v.array->null_bitmap_data() : nullptr;
    out.validity_bit = v.array->offset() + m.run_start;
  }
  return true;
}

void ParquetInput::RunRow(size_t k, std::vector<std::string_view>* cells, std::vector<uint8_t>* nulls,
                          std::vector<TypedCell>* typed) {
  Impl& m = *impl_;
  const int64_t i = m.run_start + static_cast<int64_t>(k);
  const size_t n = names_.size();
  cells->resize(n);
  nulls->resize(n);
  if (typed != nullptr) typed->resize(n);
  for (size_t c = 0; c < n; ++c) {
    const ColumnView& v = m.columns[c];
    (*nulls)[c] = 0;
    if (typed != nullptr) (*typed)[c] = TypedCell{};
    m.text[c].clear();
    if (v.may_be_null && v.array->IsNull(i)) {
      (*nulls)[c] = 1;
    } else if (typed != nullptr && v.first.data != nullptr && c < typed_columns_.size() && typed_columns_[c]) {
      (*typed)[c] = TypedCell{v.first.type, v.first.data + static_cast<size_t>(i) * v.element_size};  // no text
    } else {
      AppendCell(*v.array, i, &m.text[c]);
    }
    (*cells)[c] = m.text[c];
  }
}

void ParquetInput::AppendRunCell(size_t c, size_t k, std::string* out) const {
  const Impl& m = *impl_;
  const int64_t i = m.run_start + static_cast<int64_t>(k);
  const ColumnView& v = m.columns[c];
  if (v.may_be_null && v.array->IsNull(i)) return;
  AppendCell(*v.array, i, out);
}

bool ParquetInput::Next(std::vector<std::string_view>* cells, std::vector<uint8_t>* nulls,
                        std::vector<TypedCell>* typed) {
  if (!NextRun(1, &impl_->one)) return false;
  RunRow(0, cells, nulls, typed);
  return true;
}

}  // namespace ferry::batch
