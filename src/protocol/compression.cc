#include "protocol/compression.h"

#include <zlib.h>

#include <cctype>
#include <cstdlib>

namespace ferry::protocol {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

}  // namespace

std::string_view EncodingName(Encoding e) {
  switch (e) {
    case Encoding::kGzip: return "gzip";
    case Encoding::kDeflate: return "deflate";
    case Encoding::kIdentity: return "identity";
  }
  return "identity";
}

Result<Encoding> ParseContentEncoding(std::string_view header) {
  header = Trim(header);
  if (header.empty() || IEquals(header, "identity")) return Encoding::kIdentity;
  if (IEquals(header, "gzip")) return Encoding::kGzip;
  if (IEquals(header, "deflate")) return Encoding::kDeflate;
  return Unimplemented("unsupported Content-Encoding '" + std::string(header) + "'; use gzip or deflate");
}

Encoding ChooseResponseEncoding(std::string_view accept) {
  Encoding best = Encoding::kIdentity;
  double best_q = -1;
  while (!accept.empty()) {
    size_t comma = accept.find(',');
    std::string_view item = Trim(accept.substr(0, comma));
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    double q = 1.0;
    size_t semi = item.find(';');
    std::string_view name = Trim(item.substr(0, semi));
    if (semi != std::string_view::npos) {
      std::string_view param = Trim(item.substr(semi + 1));
      if (param.size() > 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=')
        q = std::strtod(std::string(param.substr(2)).c_str(), nullptr);
    }
    Encoding e;
    if (IEquals(name, "gzip")) e = Encoding::kGzip;
    else if (IEquals(name, "deflate")) e = Encoding::kDeflate;
    else if (IEquals(name, "identity")) e = Encoding::kIdentity;
    else continue;
    if (q > best_q) {
      best_q = q;
      best = e;
    }
  }
  return best_q > 0 ? best : Encoding::kIdentity;
}

Result<std::string> Decompress(std::string_view data, size_t max_size) {
  z_stream zs{};
  // 15 + 32: accept either a zlib or a gzip header.
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return Internal("inflateInit2 failed");
  std::string out;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  int rc = Z_OK;
  char buf[64 * 1024];
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return InvalidArgument("request body is not valid compressed data: " + std::string(zs.msg ? zs.msg : "truncated"));
    }
    size_t produced = sizeof buf - zs.avail_out;
    if (out.size() + produced > max_size) {
      inflateEnd(&zs);
      return ResourceExhausted("decompressed request body exceeds the limit of " + std::to_string(max_size) + " bytes");
    }
    out.append(buf, produced);
    if (rc == Z_OK && zs.avail_in == 0 && produced == 0) {
      inflateEnd(&zs);
      return InvalidArgument("request body is truncated compressed data");
    }
  }
  inflateEnd(&zs);
  return out;
}

Result<std::string> Compress(std::string_view data, Encoding encoding) {
  z_stream zs{};
  int bits = encoding == Encoding::kGzip ? 15 + 16 : 15;
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return Internal("deflateInit2 failed");
  std::string out;
  out.resize(deflateBound(&zs, data.size()));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return Internal("compression failed");
  out.resize(zs.total_out);
  return out;
}

}  // namespace ferry::protocol
