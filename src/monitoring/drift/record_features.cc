#include "monitoring/drift/record_features.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "core/float16.h"

namespace ferry::monitoring::drift {

namespace {

template <typename T>
double Load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return static_cast<double>(v);
}

}  // namespace

double ElementAsDouble(DataType t, const std::byte* p) {
  switch (t) {
    case DataType::kBool: return Load<uint8_t>(p) != 0 ? 1.0 : 0.0;
    case DataType::kUint8: return Load<uint8_t>(p);
    case DataType::kUint16: return Load<uint16_t>(p);
    case DataType::kUint32: return Load<uint32_t>(p);
    case DataType::kUint64: return Load<uint64_t>(p);
    case DataType::kInt8: return Load<int8_t>(p);
    case DataType::kInt16: return Load<int16_t>(p);
    case DataType::kInt32: return Load<int32_t>(p);
    case DataType::kInt64: return Load<int64_t>(p);
    case DataType::kFp16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return HalfToFloat(h);
    }
    case DataType::kBf16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return Bf16ToFloat(h);
    }
    case DataType::kFp32: return Load<float>(p);
    case DataType::kFp64: return Load<double>(p);
    default: return std::nan("");
  }
}

std::string NumberText(double v) {
  if (std::isnan(v)) return "";
  if (v == std::floor(v) && std::abs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string();
}

namespace {

// The layout every view below starts from: all elements of `t`, its rows (the first
// dimension; 1 for a scalar) and the elements per row. False for a negative dimension
// or no rows.
bool RowLayout(const Tensor& t, uint64_t* elements, uint64_t* rows, uint64_t* width) {
  *elements = 1;
  for (int64_t d : t.shape) {
    if (d < 0) return false;
    *elements *= static_cast<uint64_t>(d);
  }
  *rows = t.shape.empty() ? 1 : static_cast<uint64_t>(t.shape[0]);
  if (*rows == 0) return false;
  *width = *elements / *rows;
  return true;
}

// One tensor's layout, worked out once per request.
struct View {
  const Tensor* tensor = nullptr;
  uint64_t rows = 0, width = 0;
  std::vector<std::string_view> strings;  // BYTES elements
  bool ok = false;
};

View MakeView(const Tensor& t) {
  View v;
  v.tensor = &t;
  uint64_t elements = 0;
  if (!RowLayout(t, &elements, &v.rows, &v.width)) return v;
  if (t.datatype == DataType::kBytes) {
    std::string_view b = t.bytes();
    size_t pos = 0;
    v.strings.reserve(elements);
    for (uint64_t i = 0; i < elements; ++i) {
      if (b.size() - pos < 4) return v;
      uint32_t len;
      std::memcpy(&len, b.data() + pos, 4);
      pos += 4;
      if (b.size() - pos < len) return v;
      v.strings.push_back(b.substr(pos, len));
      pos += len;
    }
  } else {
    const size_t es = DataTypeSize(t.datatype);
    if (es == 0 || t.byte_size() != elements * es) return v;
  }
  v.ok = true;
  return v;
}

// The walk behind Visit and Add, with the callbacks inlined (Add runs once per answered
// request on the monitoring thread; a std::function call per value shows in its profile).
// `n` features of `features` are read, each from the tensor `picks` names.
template <typename NumberF, typename TextF>
uint64_t VisitFeatures(const std::vector<const ProfileFeature*>& features, size_t n, size_t inputs,
                       const uint32_t* picks, const std::vector<Tensor>& input_tensors,
                       const std::vector<Tensor>& output_tensors, NumberF&& number, TextF&& text, uint64_t* unmapped) {
  // The views live on the stack for the usual handful of tensors (this runs for every
  // answered request; two allocations per record showed in the monitoring thread), and
  // only the ones a feature reads are constructed (16 default views a record showed too).
  constexpr size_t kInline = 8;
  std::array<std::optional<View>, kInline> in_inline, out_inline;
  std::vector<std::optional<View>> in_heap, out_heap;
  std::optional<View>* in_views = in_inline.data();
  std::optional<View>* out_views = out_inline.data();
  if (input_tensors.size() > kInline) {
    in_heap.resize(input_tensors.size());
    in_views = in_heap.data();
  }
  if (output_tensors.size() > kInline) {
    out_heap.resize(output_tensors.size());
    out_views = out_heap.data();
  }
  uint64_t rows = 0;
  for (size_t i = 0; i < n; ++i) {
    const ProfileFeature& f = *features[i];
    const bool is_input = i < inputs;
    const std::vector<Tensor>& tensors = is_input ? input_tensors : output_tensors;
    std::optional<View>* views = is_input ? in_views : out_views;
    const uint32_t pick = picks[i];
    if (pick == FeatureLayout::kNone) {
      ++*unmapped;
      continue;
    }
    if (!views[pick]) views[pick].emplace(MakeView(tensors[pick]));
    const View& v = *views[pick];
    if (!v.ok || f.index >= v.width) {
      ++*unmapped;
      continue;
    }
    rows = std::max(rows, v.rows);
    const Tensor& t = *v.tensor;
    const bool bytes = t.datatype == DataType::kBytes;
    const size_t es = bytes ? 0 : DataTypeSize(t.datatype);
    const bool numeric = f.sketch.kind == FeatureKind::kNumeric;
    for (uint64_t r = 0; r < v.rows; ++r) {
      const uint64_t e = r * v.width + f.index;
      if (numeric) {
        double x;
        if (bytes) {
          std::string_view s = v.strings[e];
          auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
          if (ec != std::errc() || end != s.data() + s.size()) x = std::nan("");
        } else if (t.datatype == DataType::kFp32) {
          x = Load<float>(t.data() + e * 4);  // the common case, without the type switch
        } else {
          x = ElementAsDouble(t.datatype, t.data() + e * es);
        }
        number(i, r, x);
      } else if (bytes) {
        text(i, r, v.strings[e]);
      } else {
        const std::string s = NumberText(ElementAsDouble(t.datatype, t.data() + e * es));
        text(i, r, s);
      }
    }
  }
  return rows;
}

// The tensor a feature reads among `tensors` (the rule in the header), or kNone.
uint32_t PickTensor(const ProfileFeature& f, const std::vector<Tensor>& tensors) {
  const std::string& want = f.tensor.empty() ? f.name : f.tensor;
  for (size_t t = 0; t < tensors.size(); ++t)
    if (tensors[t].name == want) return static_cast<uint32_t>(t);
  if (f.tensor.empty() && !tensors.empty()) return 0;
  return FeatureLayout::kNone;
}

}  // namespace

bool FeatureLayout::SameNames(const std::vector<std::string>& names, const std::vector<Tensor>& tensors) {
  if (names.size() != tensors.size()) return false;
  // Checked for every request of a drift-monitored model: names of a few bytes each, so
  // compared eight bytes at a time here rather than through a memcmp call per name.
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& a = names[i];
    const std::string& b = tensors[i].name;
    const size_t len = a.size();
    if (len != b.size()) return false;
    auto word = [](const char* p) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      return w;
    };
    if (len < 8) {
      for (size_t k = 0; k < len; ++k)
        if (a[k] != b[k]) return false;
      continue;
    }
    for (size_t k = 0; k + 8 < len; k += 8)
      if (word(a.data() + k) != word(b.data() + k)) return false;
    if (word(a.data() + len - 8) != word(b.data() + len - 8)) return false;  // the last 8, overlapping
  }
  return true;
}

const std::vector<uint32_t>& FeatureLayout::For(const std::vector<const ProfileFeature*>& features, size_t n,
                                                size_t inputs, const std::vector<Tensor>& input_tensors,
                                                const std::vector<Tensor>& output_tensors) {
  if (built_ && n == n_ && SameNames(input_names_, input_tensors) && SameNames(output_names_, output_tensors))
    return picks_;
  picks_.resize(n);
  for (size_t i = 0; i < n; ++i) picks_[i] = PickTensor(*features[i], i < inputs ? input_tensors : output_tensors);
  input_names_.resize(input_tensors.size());
  for (size_t t = 0; t < input_tensors.size(); ++t) input_names_[t] = input_tensors[t].name;
  output_names_.resize(output_tensors.size());
  for (size_t t = 0; t < output_tensors.size(); ++t) output_names_[t] = output_tensors[t].name;
  // By tensor, in the order the tensors are first picked, each tensor's columns in
  // feature order.
  groups_.clear();
  columns_.clear();
  unpicked_ = 0;
  for (size_t i = 0; i < n; ++i) {
    if (picks_[i] == kNone) {
      ++unpicked_;
      continue;
    }
    const bool input = i < inputs;
    bool seen = false;
    for (const Group& g : groups_) seen = seen || (g.input == input && g.tensor == picks_[i]);
    if (seen) continue;
    Group g{input, picks_[i], static_cast<uint32_t>(columns_.size()), 0, features[i]->index};
    for (size_t j = i; j < n; ++j)
      if (picks_[j] == g.tensor && (j < inputs) == input) {
        columns_.push_back({static_cast<uint32_t>(j), features[j]->index});
        g.min_index = std::min<uint64_t>(g.min_index, features[j]->index);
      }
    g.end = static_cast<uint32_t>(columns_.size());
    groups_.push_back(g);
  }
  n_ = n;
  built_ = true;
  ++builds_;
  return picks_;
}

uint64_t RecordFeatures::Visit(const std::vector<const ProfileFeature*>& features, size_t inputs,
                               const std::vector<Tensor>& input_tensors, const std::vector<Tensor>& output_tensors,
                               const NumberFn& number, const TextFn& text, uint64_t* unmapped) {
  // Called on request threads (outlier scores) without a version's layout to keep: the
  // picks on the stack for up to 64 features.
  const size_t n = features.size();
  std::array<uint32_t, 64> stack;
  std::vector<uint32_t> heap;
  uint32_t* picks = stack.data();
  if (n > stack.size()) {
    heap.resize(n);
    picks = heap.data();
  }
  for (size_t i = 0; i < n; ++i) picks[i] = PickTensor(*features[i], i < inputs ? input_tensors : output_tensors);
  return VisitFeatures(features, n, inputs, picks, input_tensors, output_tensors, number, text, unmapped);
}

uint64_t RecordFeatures::Add(const std::vector<const ProfileFeature*>& features, size_t inputs,
                             const std::vector<Tensor>& input_tensors, const std::vector<Tensor>& output_tensors,
                             std::vector<FeatureSketch>* sketches, uint64_t* unmapped, FeatureLayout* layout) {
  FeatureSketch* out = sketches->data();
  const size_t n = std::min(features.size(), sketches->size());
  const std::vector<uint32_t>& picks = layout->For(features, n, inputs, input_tensors, output_tensors);
  return VisitFeatures(
      features, n, inputs, picks.data(), input_tensors, output_tensors,
      [out](size_t i, uint64_t, double x) { out[i].AddNumber(x); },
      [out](size_t i, uint64_t, std::string_view v) { out[i].AddCategory(v); }, unmapped);
}

namespace {

// AppendRows for any tensors, through the general walk.
void AppendRowsWalked(const std::vector<const ProfileFeature*>& features, size_t inputs, const uint32_t* picks,
                      const std::vector<Tensor>& input_tensors, const std::vector<Tensor>& output_tensors,
                      FeatureRowBlock* block) {
  const size_t n = features.size();
  std::vector<double>& values = block->values;
  const size_t base = values.size();
  values.push_back(0);  // R, once known
  // Rows are laid out as they are first reached; a feature whose tensor has fewer rows
  // leaves the rest of its column absent.
  const uint64_t rows = VisitFeatures(
      features, n, inputs, picks, input_tensors, output_tensors,
      [&values, base, n](size_t i, uint64_t r, double x) {
        const size_t at = base + 1 + r * n;
        if (values.size() < at + n) values.resize(at + n, AbsentValue());
        values[at + i] = x;
      },
      [](size_t, uint64_t, std::string_view) {}, &block->unmapped);
  values.resize(base + 1 + rows * n, AbsentValue());
  values[base] = static_cast<double>(rows);
  ++block->requests;
  block->rows += rows;
}

// A numeric tensor's layout, for reading its elements in place. Trivial, so that the
// arrays of them below cost nothing to declare.
struct DenseView {
  const std::byte* data;
  uint64_t rows, width;
  size_t element_size;
  DataType type;
  bool ok;
};

DenseView MakeDenseView(const Tensor& t) {
  DenseView v{nullptr, 0, 0, 0, t.datatype, false};
  uint64_t elements = 0;
  if (!RowLayout(t, &elements, &v.rows, &v.width)) return v;
  v.element_size = DataTypeSize(t.datatype);
  if (v.element_size == 0 || t.byte_size() != elements * v.element_size) return v;
  v.data = t.data();
  v.ok = true;
  return v;
}

}  // namespace

void RecordFeatures::AppendRows(const std::vector<const ProfileFeature*>& features, size_t inputs,
                                const std::vector<Tensor>& input_tensors, const std::vector<Tensor>& output_tensors,
                                FeatureLayout* layout, FeatureRowBlock* block) {
  const size_t n = features.size();
  const std::vector<uint32_t>& picks = layout->For(features, n, inputs, input_tensors, output_tensors);
  // This runs on the request thread for every answered request of a drift-monitored
  // model: numeric tensors (every model's usual case) are read in place, each laid out
  // once and each feature's view found once; a BYTES tensor (numbers as text), more
  // tensors or features than the arrays below hold take the general walk.
  constexpr size_t kInline = 8, kFeatures = 64;
  bool walk = n > kFeatures || input_tensors.size() > kInline || output_tensors.size() > kInline;
  for (size_t t = 0; !walk && t < input_tensors.size(); ++t) walk = input_tensors[t].datatype == DataType::kBytes;
  for (size_t t = 0; !walk && t < output_tensors.size(); ++t) walk = output_tensors[t].datatype == DataType::kBytes;
  if (walk) return AppendRowsWalked(features, inputs, picks.data(), input_tensors, output_tensors, block);
  // Each tensor a feature reads is laid out once, then its features' columns are read
  // (the layout's groups, worked out with the picks): no per-feature search for its view.
  const std::vector<FeatureLayout::Group>& groups = layout->groups();
  const FeatureLayout::Column* columns = layout->columns().data();
  DenseView views[2 * kInline];  // per group (a group is a distinct tensor)
  // The rows: the most of any tensor with a readable feature (one whose index is within
  // the tensor's row width).
  uint64_t rows = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    const FeatureLayout::Group& group = groups[g];
    const DenseView& v = views[g] =
        MakeDenseView(group.input ? input_tensors[group.tensor] : output_tensors[group.tensor]);
    if (v.ok && group.min_index < v.width) rows = std::max(rows, v.rows);
  }
  // R and the request's rows, absent until read. (Appending them one by one into room
  // reserved by doubling saved ~80 instructions here but cost ONNX Runtime ~700 more per
  // request in the monitoring benchmark, callgrind, twice: the heap's layout moved.)
  std::vector<double>& values = block->values;
  const size_t base = values.size();
  const size_t cells = rows * n;
  values.resize(base + 1 + cells, AbsentValue());
  values[base] = static_cast<double>(rows);
  double* out = values.data() + base + 1;
  uint64_t unmapped = layout->unpicked();
  for (size_t g = 0; g < groups.size(); ++g) {
    const DenseView& v = views[g];
    const uint32_t begin = groups[g].begin, end = groups[g].end;
    if (!v.ok) {
      unmapped += end - begin;
      continue;
    }
    const size_t step = v.width * v.element_size;
    const uint64_t width = v.width, vrows = v.rows;
    for (uint32_t c = begin; c < end; ++c) {
      const FeatureLayout::Column& col = columns[c];
      if (col.index >= width) {
        ++unmapped;
        continue;
      }
      const std::byte* p = v.data + col.index * v.element_size;
      double* o = out + col.feature;
      if (v.type == DataType::kFp32) {
        for (uint64_t r = 0; r < vrows; ++r, p += step, o += n) *o = Load<float>(p);
      } else {
        for (uint64_t r = 0; r < vrows; ++r, p += step, o += n) *o = ElementAsDouble(v.type, p);
      }
    }
  }
  block->unmapped += unmapped;
  ++block->requests;
  block->rows += rows;
}

}  // namespace ferry::monitoring::drift
