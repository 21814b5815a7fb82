// test_mongo.hpp against the server it finds: a URL of the expected form, and a
// MongoDB-wire server there that answers a hello (sent by hand: no driver is linked yet).
#include "store/mongo/test_mongo.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>

namespace chatorbit::store::test_mongo {
namespace {

// The port of "mongodb://127.0.0.1:P/".
int port_of(const std::string& url) {
  const std::string prefix = "mongodb://127.0.0.1:";
  if (url.rfind(prefix, 0) != 0 || url.back() != '/') throw std::runtime_error("unexpected URL " + url);
  return std::stoi(url.substr(prefix.size()));
}

// A TCP connection to 127.0.0.1:port that gives up on reads after 5 s; -1 if refused.
int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void put_int32(std::string& out, std::int32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((static_cast<std::uint32_t>(v) >> (8 * i)) & 0xFF);
}

std::int32_t get_int32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return static_cast<std::int32_t>(v);
}

bool read_exactly(int fd, char* out, std::size_t n) {
  for (std::size_t got = 0; got < n;) {
    const ssize_t r = ::read(fd, out + got, n - got);
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

// OP_MSG {hello: 1, $db: "admin"}; the reply's body (after the 16-byte header), or ""
// if the server closed the connection or answered with something else.
std::string hello(int fd) {
  constexpr std::int32_t op_msg = 2013, request_id = 7;
  std::string doc;
  doc += '\x10' + std::string("hello", 6);  // int32 "hello" (with its NUL)
  put_int32(doc, 1);
  doc += '\x02' + std::string("$db", 4);  // string "$db"
  put_int32(doc, 6);
  doc += std::string("admin", 6);
  std::string bson;
  put_int32(bson, static_cast<std::int32_t>(4 + doc.size() + 1));
  bson += doc + '\0';
  std::string msg;
  put_int32(msg, static_cast<std::int32_t>(16 + 4 + 1 + bson.size()));
  put_int32(msg, request_id);
  put_int32(msg, 0);
  put_int32(msg, op_msg);
  put_int32(msg, 0);  // flags
  msg += '\0';        // section kind 0: the command document
  msg += bson;
  if (::write(fd, msg.data(), msg.size()) != static_cast<ssize_t>(msg.size())) return "";
  char header[16];
  if (!read_exactly(fd, header, sizeof header)) return "";
  const std::int32_t length = get_int32(header);
  if (length < 16 || get_int32(header + 8) != request_id || get_int32(header + 12) != op_msg) return "";
  std::string body(static_cast<std::size_t>(length - 16), '\0');
  if (!read_exactly(fd, body.data(), body.size())) return "";
  return body;
}

TEST(TestMongo, UrlIsAMongodbUrlOnLoopback) {
  const std::string u = url();
  EXPECT_EQ(u.rfind("mongodb://127.0.0.1:", 0), 0u) << u;
  EXPECT_GT(port_of(u), 0);
  EXPECT_EQ(url(), u);
}

TEST(TestMongo, TheServerAnswersHello) {
  const int fd = connect_to(port_of(url()));
  ASSERT_GE(fd, 0) << "cannot connect to " << url();
  const std::string reply = hello(fd);
  ::close(fd);
  ASSERT_FALSE(reply.empty()) << "no OP_MSG reply from " << url();
  // {..., ok: 1.0}: the double 1.0 after the element "ok".
  const std::string ok_one = std::string("\x01ok\0", 4) + std::string("\0\0\0\0\0\0\xf0\x3f", 8);
  EXPECT_NE(reply.find(ok_one), std::string::npos);
}

TEST(TestMongo, UniqueDatabaseNamesAreFreshAndValid) {
  std::set<std::string> names;
  for (int i = 0; i < 1000; ++i) {
    const std::string name = unique_database("smoke");
    EXPECT_EQ(name.rfind("smoke_", 0), 0u) << name;
    EXPECT_LE(name.size(), 63u) << name;
    EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"),
              std::string::npos)
        << name;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), 1000u);
  EXPECT_LE(unique_database(std::string(32, 'p')).size(), 63u);
}

TEST(TestMongo, UniqueDatabaseRejectsPrefixesThatWouldMakeABadName) {
  EXPECT_THROW(unique_database(""), std::invalid_argument);
  EXPECT_THROW(unique_database("has.dot"), std::invalid_argument);
  EXPECT_THROW(unique_database("has space"), std::invalid_argument);
  EXPECT_THROW(unique_database(std::string(33, 'p')), std::invalid_argument);
}

}  // namespace
}  // namespace chatorbit::store::test_mongo
