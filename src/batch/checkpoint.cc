#include "batch/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

namespace ferry::batch {
namespace {

Status SyncFolder(const std::filesystem::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Internal("cannot open folder '" + dir.string() + "': " + std::strerror(errno));
  ::fsync(fd);
  ::close(fd);
  return Status::Ok();
}

}  // namespace

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Internal("cannot write " + what + ": " + std::strerror(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status SaveCheckpoint(const std::filesystem::path& path, const Checkpoint& c) {
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("version");
  w.Int(1);
  w.Key("identity");
  w.StartObject();
  for (const auto& [k, v] : c.identity) {
    w.Key(k.c_str());
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  }
  w.EndObject();
  auto u64 = [&w](const char* k, uint64_t v) {
    w.Key(k);
    w.Uint64(v);
  };
  u64("input_offset", c.input_offset);
  u64("next_row", c.next_row);
  u64("next_line", c.next_line);
  u64("output_bytes", c.output_bytes);
  u64("error_bytes", c.error_bytes);
  u64("row_group_meta_bytes", c.row_group_meta_bytes);
  u64("rows_ok", c.rows_ok);
  u64("rows_failed", c.rows_failed);
  w.Key("complete");
  w.Bool(c.complete);
  w.EndObject();
  std::string text(sb.GetString(), sb.GetSize());
  text += '\n';

  std::filesystem::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Internal("cannot write checkpoint '" + tmp.string() + "': " + std::strerror(errno));
  Status s = WriteAll(fd, text, "checkpoint '" + tmp.string() + "'");
  if (s.ok() && ::fsync(fd) != 0) s = Internal("cannot sync checkpoint '" + tmp.string() + "': " + std::strerror(errno));
  ::close(fd);
  FERRY_RETURN_IF_ERROR(s);
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return Internal("cannot rename '" + tmp.string() + "' to '" + path.string() + "': " + std::strerror(errno));
  return SyncFolder(path.parent_path());
}

Result<std::optional<Checkpoint>> LoadCheckpoint(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::optional<Checkpoint>();
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const std::string bad = "checkpoint '" + path.string() + "' is damaged (pass --restart to start over): ";
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsObject()) return InvalidArgument(bad + "not a JSON object");
  if (!d.HasMember("version") || !d["version"].IsInt() || d["version"].GetInt() != 1)
    return InvalidArgument(bad + "unknown version");
  Checkpoint c;
  if (!d.HasMember("identity") || !d["identity"].IsObject()) return InvalidArgument(bad + "no identity");
  for (auto m = d["identity"].MemberBegin(); m != d["identity"].MemberEnd(); ++m) {
    if (!m->value.IsString()) return InvalidArgument(bad + "identity values must be strings");
    c.identity.emplace_back(m->name.GetString(), std::string(m->value.GetString(), m->value.GetStringLength()));
  }
  auto u64 = [&d](const char* k, uint64_t* out) {
    if (!d.HasMember(k) || !d[k].IsUint64()) return false;
    *out = d[k].GetUint64();
    return true;
  };
  if (!u64("input_offset", &c.input_offset) || !u64("next_row", &c.next_row) || !u64("next_line", &c.next_line) ||
      !u64("output_bytes", &c.output_bytes) || !u64("error_bytes", &c.error_bytes) || !u64("rows_ok", &c.rows_ok) ||
      !u64("rows_failed", &c.rows_failed))
    return InvalidArgument(bad + "a counter is missing");
  // Absent in the checkpoints of jobs that wrote no Parquet.
  if (d.HasMember("row_group_meta_bytes") && !u64("row_group_meta_bytes", &c.row_group_meta_bytes))
    return InvalidArgument(bad + "row_group_meta_bytes is not a count");
  if (!d.HasMember("complete") || !d["complete"].IsBool()) return InvalidArgument(bad + "no 'complete'");
  c.complete = d["complete"].GetBool();
  return std::optional<Checkpoint>(std::move(c));
}

std::string IdentityDifference(const JobIdentity& a, const JobIdentity& b) {
  auto find = [](const JobIdentity& id, const std::string& k) -> const std::string* {
    for (const auto& [key, v] : id)
      if (key == k) return &v;
    return nullptr;
  };
  auto shown = [](const std::string* v) { return v ? "'" + *v + "'" : std::string("(none)"); };
  for (const auto& [k, v] : b) {
    const std::string* old = find(a, k);
    if (!old || *old != v) return k + " was " + shown(old) + ", now " + shown(&v);
  }
  for (const auto& [k, v] : a)
    if (!find(b, k)) return k + " was " + shown(&v) + ", now (none)";
  return {};
}

}  // namespace ferry::batch
