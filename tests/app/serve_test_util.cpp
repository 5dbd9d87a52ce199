#include "serve_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "video_io/mp4_reader.h"

namespace t2v::test {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

Reply to_reply(const httplib::Result& r) {
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  out.headers = r->headers;
  return out;
}

int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server closed early (e.g. after answering 413): what it said is read next
    done += static_cast<size_t>(n);
  }
}

}  // namespace

std::vector<std::string> serve_args(const std::string& jobs_dir, const std::vector<std::string>& extra) {
  return with_tiny_model({"serve", "--port", "0", "--host", "127.0.0.1", "--jobs-dir", jobs_dir, "-q"}, extra);
}

ServeProcess::ServeProcess(const std::string& jobs_dir, const std::vector<std::string>& extra,
                           const std::vector<std::pair<std::string, std::string>>& env, bool wait_ready_too) {
  child_ = std::make_unique<Child>(serve_args(jobs_dir, extra), env);
  const std::regex re(R"(listening on http://127\.0\.0\.1:(\d+))");
  const auto t0 = Clock::now();
  while (since(t0) < 60) {
    std::smatch m;
    const std::string out = child_->out();
    if (std::regex_search(out, m, re)) {
      port_ = std::stoi(m[1].str());
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT(port_, 0) << "the server did not print its port:\n" << child_->err();
  if (port_ > 0 && wait_ready_too) {
    EXPECT_TRUE(wait_ready(60)) << child_->err();
  }
}

httplib::Client ServeProcess::client() const {
  httplib::Client c("127.0.0.1", port_);
  c.set_connection_timeout(5, 0);
  c.set_read_timeout(30, 0);
  c.set_write_timeout(30, 0);
  return c;
}

bool ServeProcess::wait_ready(double timeout_s) {
  const auto t0 = Clock::now();
  while (since(t0) < timeout_s) {
    if (http_get(*this, "/health").status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int ServeProcess::stop(int sig) {
  child_->signal(sig);
  return child_->wait();
}

std::string Reply::header(const std::string& k) const {
  auto it = headers.find(k);
  return it == headers.end() ? "" : it->second;
}

Reply http_get(const ServeProcess& s, const std::string& path, const httplib::Headers& h) {
  return to_reply(s.client().Get(path, h));
}

Reply http_post(const ServeProcess& s, const std::string& path, const std::string& body, const httplib::Headers& h,
                const std::string& type) {
  return to_reply(s.client().Post(path, h, body, type));
}

Reply http_delete(const ServeProcess& s, const std::string& path, const httplib::Headers& h) {
  return to_reply(s.client().Delete(path, h));
}

json submit(const ServeProcess& s, const json& body, const httplib::Headers& h) {
  Reply r = http_post(s, "/v1/videos", body.dump(), h);
  EXPECT_EQ(r.status, 200) << body.dump() << " -> " << r.body;
  return r.json();
}

json poll_video(const ServeProcess& s, const std::string& id, const std::string& status, double timeout_s,
                const httplib::Headers& h) {
  const auto t0 = Clock::now();
  json v;
  while (since(t0) < timeout_s) {
    Reply r = http_get(s, "/v1/videos/" + id, h);
    v = r.json();
    if (r.status == 200 && v.value("status", "") == status) return v;
    if (r.status == 200 && v.value("status", "") == "failed" && status != "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ADD_FAILURE() << id << " did not reach " << status << "; last: " << v.dump();
  return v;
}

std::string raw_request(int port, const std::string& bytes, double timeout_s) {
  int fd = connect_loopback(port);
  if (fd < 0) return "";
  send_all(fd, bytes);
  std::string got;
  char buf[65536];
  const auto t0 = Clock::now();
  while (since(t0) < timeout_s) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
    // One whole response (headers and Content-Length bytes) is enough: a server may keep the
    // connection open for the next request.
    const size_t end = got.find("\r\n\r\n");
    const std::regex len_re(R"(\r\n[Cc]ontent-[Ll]ength: *(\d+)\r\n)");
    std::smatch m;
    const std::string head = end == std::string::npos ? "" : got.substr(0, end + 2);
    if (end != std::string::npos && std::regex_search(head, m, len_re) &&
        got.size() >= end + 4 + std::stoul(m[1].str()))
      break;
  }
  ::close(fd);
  return got;
}

RawConnection::RawConnection(int port, const std::string& bytes) : fd_(connect_loopback(port)) {
  if (fd_ >= 0) send_all(fd_, bytes);
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::wait_closed(double timeout_s) {
  const auto t0 = Clock::now();
  char buf[4096];
  while (fd_ >= 0 && since(t0) < timeout_s) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return true;  // what it said before closing, if anything, is not looked at
  }
  return false;
}

std::vector<json> journal(const std::string& jobs_dir) {
  std::vector<json> out;
  std::istringstream in(read_text(jobs_dir + "/manifest.jsonl"));
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, false);
    EXPECT_TRUE(j.is_object()) << "journal line does not parse: " << line;
    if (j.is_object()) out.push_back(j);
  }
  return out;
}

std::map<std::pair<std::string, std::string>, int> journal_counts(const std::string& jobs_dir) {
  std::map<std::pair<std::string, std::string>, int> n;
  for (const json& r : journal(jobs_dir)) ++n[{r.value("id", ""), r.value("status", "")}];
  return n;
}

std::vector<std::vector<uint8_t>> mp4_frames(const std::string& path) {
  Mp4Reader r;
  r.open(path);
  return r.read_all_frames();
}

}  // namespace t2v::test
