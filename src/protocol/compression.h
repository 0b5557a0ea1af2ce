#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

// HTTP body compression as Triton's frontend does it: gzip and deflate (zlib wrapper).
namespace ferry::protocol {

enum class Encoding { kIdentity, kGzip, kDeflate };

// Content-Encoding of a request: identity/empty, gzip, deflate; anything else is
// UNIMPLEMENTED (HTTP 501) naming the encoding.
Result<Encoding> ParseContentEncoding(std::string_view header);

// Picks the response encoding from Accept-Encoding: the highest q among identity,
// gzip and deflate, the first listed on a tie; identity when nothing matches.
Encoding ChooseResponseEncoding(std::string_view accept_encoding);

// Inflates gzip or zlib data (auto-detected). Fails with RESOURCE_EXHAUSTED when the
// output would exceed `max_size`, INVALID_ARGUMENT on corrupt data.
Result<std::string> Decompress(std::string_view data, size_t max_size);

// Compresses with gzip or zlib framing. REQUIRES: encoding != kIdentity.
Result<std::string> Compress(std::string_view data, Encoding encoding);

std::string_view EncodingName(Encoding e);

}  // namespace ferry::protocol
