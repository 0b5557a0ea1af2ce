#include "protocol/grpc/grpc_framing.h"

namespace ferry::protocol::grpc_wire {

void AppendMessagePrefix(std::string* out, bool compressed, uint32_t length) {
  const char prefix[kPrefixBytes] = {static_cast<char>(compressed ? 1 : 0), static_cast<char>(length >> 24),
                                     static_cast<char>(length >> 16), static_cast<char>(length >> 8),
                                     static_cast<char>(length)};
  out->append(prefix, kPrefixBytes);
}

Status MessageDeframer::TakePrefix(const char* prefix) {
  const auto flag = static_cast<unsigned char>(prefix[0]);
  if (flag > 1)
    return InvalidArgument("gRPC message prefix: compressed flag is " + std::to_string(flag) + ", expected 0 or 1");
  const auto* p = reinterpret_cast<const unsigned char*>(prefix + 1);
  const uint64_t length = (uint64_t{p[0]} << 24) | (uint64_t{p[1]} << 16) | (uint64_t{p[2]} << 8) | p[3];
  if (length > max_)
    return ResourceExhausted("Received message larger than max (" + std::to_string(length) + " vs. " +
                             std::to_string(max_) + ")");
  compressed_ = flag == 1;
  need_ = kPrefixBytes + length;
  return Status::Ok();
}

Result<std::chrono::nanoseconds> ParseTimeout(std::string_view value) {
  auto bad = [&] {
    return InvalidArgument("invalid grpc-timeout '" + std::string(value) +
                           "': expected 1 to 8 digits and a unit of H, M, S, m, u or n");
  };
  if (value.size() < 2 || value.size() > 9) return bad();
  int64_t n = 0;
  for (char c : value.substr(0, value.size() - 1)) {
    if (c < '0' || c > '9') return bad();
    n = n * 10 + (c - '0');
  }
  using namespace std::chrono;
  switch (value.back()) {
    case 'H': return duration_cast<nanoseconds>(hours(n));
    case 'M': return duration_cast<nanoseconds>(minutes(n));
    case 'S': return duration_cast<nanoseconds>(seconds(n));
    case 'm': return duration_cast<nanoseconds>(milliseconds(n));
    case 'u': return duration_cast<nanoseconds>(microseconds(n));
    case 'n': return nanoseconds(n);
  }
  return bad();
}

std::string PercentEncode(std::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (char ch : message) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c <= 0x7E && c != '%') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}
}  // namespace

std::string PercentDecode(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '%' && i + 2 < encoded.size()) {
      const int hi = HexValue(encoded[i + 1]), lo = HexValue(encoded[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(encoded[i]);
  }
  return out;
}

}  // namespace ferry::protocol::grpc_wire
