#include "engine/redis/resp.hpp"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <charconv>

namespace chatorbit::engine::redis {

namespace {

Reply convert(const redisReply& r) {
  Reply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::string;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::status;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::error;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::integer;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::array;
      out.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(convert(*r.element[i]));
      break;
    default: out.type = Reply::Type::nil; break;
  }
  return out;
}

void append_bulk(std::string& out, std::string_view a) {
  char len[24];
  auto [end, ec] = std::to_chars(len, len + sizeof len, a.size());
  out += '$';
  out.append(len, end);
  out += "\r\n";
  out += a;
  out += "\r\n";
}

}  // namespace

std::int64_t Reply::as_int() const {
  if (type == Type::integer) return integer;
  if (type == Type::string || type == Type::status) {
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(str.data(), str.data() + str.size(), v);
    if (ec == std::errc{} && end == str.data() + str.size()) return v;
  }
  throw ProtocolError("redis: expected an integer reply, got " + describe());
}

std::string Reply::describe() const {
  switch (type) {
    case Type::string: return "\"" + str.substr(0, 64) + (str.size() > 64 ? "...\"" : "\"");
    case Type::status: return str;
    case Type::error: return "error " + str;
    case Type::integer: return std::to_string(integer);
    case Type::nil: return "nil";
    case Type::array: return "array of " + std::to_string(elements.size());
  }
  return "?";
}

Command& Command::arg(std::string_view a) {
  args_.emplace_back(a);
  return *this;
}

Command& Command::arg(std::int64_t n) {
  args_.push_back(std::to_string(n));
  return *this;
}

std::string Command::encode() const {
  std::string out;
  encode_command(out, args_);
  return out;
}

namespace {

template <class Args>
void encode_array(std::string& out, const Args& args) {
  char len[24];
  auto [end, ec] = std::to_chars(len, len + sizeof len, args.size());
  out += '*';
  out.append(len, end);
  out += "\r\n";
  for (const auto& a : args) append_bulk(out, a);
}

}  // namespace

void encode_command(std::string& out, const std::vector<std::string>& args) { encode_array(out, args); }

void encode_command(std::string& out, std::initializer_list<std::string_view> args) { encode_array(out, args); }

RespReader::RespReader() : reader_(redisReaderCreate()) {
  if (reader_ == nullptr) throw std::bad_alloc();
  // Keep the read buffer however large a big reply made it: the default (16 KiB) frees
  // and regrows it on every large pub/sub burst.
  reader_->maxbuf = 0;
}

RespReader::~RespReader() { redisReaderFree(reader_); }

void RespReader::feed(const char* data, std::size_t size) {
  if (redisReaderFeed(reader_, data, size) != REDIS_OK) throw ProtocolError("redis: reader refused input");
}

std::optional<Reply> RespReader::next() {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
    throw ProtocolError(std::string("redis: protocol error: ") + reader_->errstr);
  }
  if (raw == nullptr) return std::nullopt;
  std::unique_ptr<redisReply, void (*)(void*)> owned(static_cast<redisReply*>(raw), freeReplyObject);
  return convert(*owned);
}

}  // namespace chatorbit::engine::redis
