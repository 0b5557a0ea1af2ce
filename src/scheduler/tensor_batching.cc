#include "scheduler/tensor_batching.h"

#include <cstring>
#include <memory>

namespace ferry::scheduler {

Tensor ConcatBatch(const std::vector<const Tensor*>& parts) {
  Tensor out;
  out.name = parts[0]->name;
  out.datatype = parts[0]->datatype;
  out.shape = parts[0]->shape;
  out.shape[0] = 0;
  size_t total = 0;
  for (const Tensor* p : parts) {
    out.shape[0] += p->shape[0];
    total += p->byte_size();
  }
  std::string bytes;
  bytes.reserve(total);
  for (const Tensor* p : parts) bytes.append(p->bytes());
  out.Own(std::move(bytes));
  return out;
}

Result<std::vector<Tensor>> SplitBatch(Tensor batch, const std::vector<int64_t>& sizes) {
  int64_t rows = 0;
  for (int64_t s : sizes) rows += s;
  if (batch.shape.empty() || batch.shape[0] != rows)
    return Internal("output '" + batch.name + "' has shape " + ShapeToString(batch.shape) +
                    " but the batch holds " + std::to_string(rows) + " rows");
  Shape row_shape(batch.shape.begin() + 1, batch.shape.end());
  const uint64_t per_row = *ElementCount(row_shape);
  // The pieces borrow the batch output through the shared tensor, which keeps its buffer.
  auto keep = std::make_shared<const Tensor>(std::move(batch));
  const Tensor& b = *keep;
  std::vector<Tensor> pieces;
  pieces.reserve(sizes.size());
  size_t offset = 0;
  for (int64_t s : sizes) {
    Tensor t;
    t.name = b.name;
    t.datatype = b.datatype;
    t.shape = b.shape;
    t.shape[0] = s;
    size_t len;
    if (b.datatype == DataType::kBytes) {
      size_t end = offset;
      for (uint64_t e = 0; e < per_row * static_cast<uint64_t>(s); ++e) {
        if (end + 4 > b.byte_size()) return Internal("output '" + b.name + "': truncated BYTES data");
        uint32_t n;
        std::memcpy(&n, b.data() + end, 4);
        end += 4 + n;
      }
      if (end > b.byte_size()) return Internal("output '" + b.name + "': truncated BYTES data");
      len = end - offset;
    } else {
      len = per_row * static_cast<uint64_t>(s) * DataTypeSize(b.datatype);
    }
    t.Borrow(b.data() + offset, len, keep);
    offset += len;
    pieces.push_back(std::move(t));
  }
  return pieces;
}

}  // namespace ferry::scheduler
