#include "net/router.hpp"

#include <stdexcept>

namespace chatorbit::http {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  if (!path.empty() && path[0] == '/') i = 1;
  while (i <= path.size()) {
    const auto slash = path.find('/', i);
    const auto end = slash == std::string_view::npos ? path.size() : slash;
    out.push_back(path.substr(i, end - i));
    if (slash == std::string_view::npos) break;
    i = slash + 1;
  }
  return out;
}

bool is_param(std::string_view seg) { return seg.size() >= 2 && seg.front() == '{' && seg.back() == '}'; }
bool is_rest(std::string_view seg) { return seg.size() >= 3 && seg.substr(0, 2) == "{*" && seg.back() == '}'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Score of a match: how many literal segments agreed; higher wins. -1: no match.
int match_segments(const Route& r, const std::vector<std::string_view>& parts,
                   std::vector<std::pair<std::string, std::string>>& params, bool& bad) {
  params.clear();
  int literals = 0;
  std::size_t i = 0;
  for (; i < r.segments.size(); ++i) {
    const std::string& seg = r.segments[i];
    if (is_rest(seg)) {
      std::string rest;
      for (std::size_t j = i; j < parts.size(); ++j) {
        if (j > i) rest += '/';
        rest += parts[j];
      }
      auto decoded = percent_decode(rest, false);
      if (!decoded) {
        bad = true;
        return -1;
      }
      params.emplace_back(seg.substr(2, seg.size() - 3), std::move(*decoded));
      return literals;
    }
    if (i >= parts.size()) return -1;
    if (is_param(seg)) {
      if (parts[i].empty()) return -1;
      auto decoded = percent_decode(parts[i], false);
      if (!decoded) {
        bad = true;
        return -1;
      }
      params.emplace_back(seg.substr(1, seg.size() - 2), std::move(*decoded));
    } else if (seg == parts[i]) {
      ++literals;
    } else {
      return -1;
    }
  }
  return i == parts.size() ? literals : -1;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void Router::add(bhttp::verb method, std::string pattern, Handler handler) {
  Route r{method, std::move(pattern), std::move(handler), {}};
  for (auto seg : split_path(r.pattern)) r.segments.emplace_back(seg);
  for (const auto& existing : routes_) {
    if (existing.method == r.method && existing.pattern == r.pattern) {
      throw std::logic_error("duplicate route " + std::string(bhttp::to_string(method)) + " " + r.pattern);
    }
  }
  routes_.push_back(std::move(r));
}

Router::Match Router::match(bhttp::verb method, std::string_view path) const {
  Match best;
  int best_score = -1;
  const auto parts = split_path(path);
  std::vector<std::pair<std::string, std::string>> params;
  for (const auto& r : routes_) {
    bool bad = false;
    const int score = match_segments(r, parts, params, bad);
    if (bad) best.bad_encoding = true;
    if (score < 0) continue;
    best.allowed.push_back(r.method);
    if (r.method == method && score > best_score) {
      best_score = score;
      best.route = &r;
      best.params = params;
    }
  }
  return best;
}

std::string_view Context::param(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) return v;
  }
  return {};
}

QueryParam find_query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    const auto key = percent_decode(pair.substr(0, eq), true);
    if (key && *key == name) {
      if (eq == std::string_view::npos) return {true, std::string{}};
      return {true, percent_decode(pair.substr(eq + 1), true)};
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

std::optional<std::string> Context::query(std::string_view name) const {
  auto found = find_query_param(query_string, name);
  return found.present ? std::move(found.value) : std::nullopt;
}

std::optional<std::string> Context::cookie(std::string_view name) const {
  const auto it = req.find(bhttp::field::cookie);
  if (it == req.end()) return std::nullopt;
  std::string_view c = it->value();
  while (!c.empty()) {
    while (!c.empty() && (c.front() == ' ' || c.front() == ';')) c.remove_prefix(1);
    const auto semi = c.find(';');
    const auto pair = c.substr(0, semi);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      auto value = pair.substr(eq + 1);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
      return std::string(value);
    }
    if (semi == std::string_view::npos) break;
    c.remove_prefix(semi + 1);
  }
  return std::nullopt;
}

std::optional<std::string> Context::bearer() const {
  const auto it = req.find(bhttp::field::authorization);
  if (it == req.end()) return std::nullopt;
  std::string_view v = it->value();
  if (v.size() < 7) return std::nullopt;
  // The scheme is case-insensitive (RFC 7235 2.1).
  std::string scheme(v.substr(0, 7));
  for (auto& ch : scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (scheme != "bearer ") return std::nullopt;
  v.remove_prefix(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  if (v.empty()) return std::nullopt;
  return std::string(v);
}

}  // namespace chatorbit::http
