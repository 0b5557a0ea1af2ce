#include "monitoring/quality/calibration.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

namespace ferry::monitoring::quality {

IsotonicCalibrator IsotonicCalibrator::Fit(const std::vector<double>& scores, const std::vector<int>& labels) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Blocks of tied scores first, then pooled while they violate monotonicity.
  struct Block {
    double x_lo, x_hi, sum, weight;
  };
  std::vector<Block> blocks;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    double sum = 0;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) sum += labels[order[j++]];
    blocks.push_back({scores[order[i]], scores[order[i]], sum, static_cast<double>(j - i)});
    while (blocks.size() >= 2) {
      Block& b = blocks[blocks.size() - 1];
      Block& a = blocks[blocks.size() - 2];
      if (a.sum / a.weight < b.sum / b.weight) break;
      a.x_hi = b.x_hi;
      a.sum += b.sum;
      a.weight += b.weight;
      blocks.pop_back();
    }
    i = j;
  }
  IsotonicCalibrator c;
  for (const Block& b : blocks) {
    const double y = b.sum / b.weight;
    c.x_.push_back(b.x_lo);
    c.y_.push_back(y);
    if (b.x_hi != b.x_lo) {
      c.x_.push_back(b.x_hi);
      c.y_.push_back(y);
    }
  }
  return c;
}

double IsotonicCalibrator::Apply(double score) const {
  if (x_.empty()) return score;
  if (score <= x_.front()) return y_.front();
  if (score >= x_.back()) return y_.back();
  const size_t i = static_cast<size_t>(std::upper_bound(x_.begin(), x_.end(), score) - x_.begin());
  const double t = (score - x_[i - 1]) / (x_[i] - x_[i - 1]);
  return y_[i - 1] + t * (y_[i] - y_[i - 1]);
}

double ExpectedCalibrationError(const std::vector<double>& scores, const std::vector<int>& labels, int bins) {
  const size_t n = scores.size();
  if (n == 0) return 0;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double ece = 0;
  const size_t k = static_cast<size_t>(std::max(1, bins));
  for (size_t b = 0; b < k; ++b) {
    const size_t lo = b * n / k, hi = (b + 1) * n / k;
    if (hi <= lo) continue;
    double p = 0, y = 0;
    for (size_t i = lo; i < hi; ++i) {
      p += scores[order[i]];
      y += labels[order[i]];
    }
    const double m = static_cast<double>(hi - lo);
    ece += std::abs(y / m - p / m) * m / static_cast<double>(n);
  }
  return ece;
}

bool NeedsCalibration(const std::vector<double>& scores, const std::vector<int>& labels, int splits) {
  std::vector<size_t> by_class[2];
  for (size_t i = 0; i < scores.size(); ++i) by_class[labels[i] != 0].push_back(i);
  if (by_class[0].size() < 10 || by_class[1].size() < 10) return false;
  std::mt19937_64 rng(42);
  double before = 0, after = 0;
  for (int s = 0; s < splits; ++s) {
    std::vector<double> fit_x, test_x;
    std::vector<int> fit_y, test_y;
    for (auto& rows : by_class) {
      std::shuffle(rows.begin(), rows.end(), rng);
      const size_t test = std::max<size_t>(1, rows.size() / 10);
      for (size_t i = 0; i < rows.size(); ++i) {
        (i < test ? test_x : fit_x).push_back(scores[rows[i]]);
        (i < test ? test_y : fit_y).push_back(labels[rows[i]] != 0);
      }
    }
    const IsotonicCalibrator c = IsotonicCalibrator::Fit(fit_x, fit_y);
    std::vector<double> calibrated(test_x.size());
    for (size_t i = 0; i < test_x.size(); ++i) calibrated[i] = c.Apply(test_x[i]);
    before += ExpectedCalibrationError(test_x, test_y);
    after += ExpectedCalibrationError(calibrated, test_y);
  }
  return after < before;
}

Result<CalibrationSet> ReadCalibrationSet(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(path.string() + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  const std::string body = text.str();
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError())
    return InvalidArgument(path.string() + ": not JSON (" + rapidjson::GetParseError_En(doc.GetParseError()) + ")");
  if (!doc.IsObject()) return InvalidArgument(path.string() + ": expected an object {\"probability\", \"label\"}");
  auto p = doc.FindMember("probability");
  auto l = doc.FindMember("label");
  if (p == doc.MemberEnd() || !p->value.IsArray())
    return InvalidArgument(path.string() + ": probability: missing or not an array");
  if (l == doc.MemberEnd() || !l->value.IsArray())
    return InvalidArgument(path.string() + ": label: missing or not an array");
  if (p->value.Size() != l->value.Size() || p->value.Empty())
    return InvalidArgument(path.string() + ": probability and label must be parallel, non-empty arrays");
  CalibrationSet set;
  for (rapidjson::SizeType i = 0; i < p->value.Size(); ++i) {
    const auto& pv = p->value[i];
    const auto& lv = l->value[i];
    if (!pv.IsNumber() || !(pv.GetDouble() >= 0 && pv.GetDouble() <= 1))
      return InvalidArgument(path.string() + ": probability[" + std::to_string(i) + "]: not a number in [0, 1]");
    if (!lv.IsInt() || (lv.GetInt() != 0 && lv.GetInt() != 1))
      return InvalidArgument(path.string() + ": label[" + std::to_string(i) + "]: not 0 or 1");
    set.scores.push_back(pv.GetDouble());
    set.labels.push_back(lv.GetInt());
  }
  return set;
}

}  // namespace ferry::monitoring::quality
