// Helpers for the tests of `t2v serve`: the real server started on a free loopback port (as a
// child process the test can signal or kill), an HTTP client for it, raw sockets for requests
// a well-behaved client never sends, and the job journal.
#pragma once

#include <signal.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"

namespace t2v::test {

// `t2v serve --port 0 --jobs-dir DIR -q --model <test model>` + server defaults + extra.
std::vector<std::string> serve_args(const std::string& jobs_dir, const std::vector<std::string>& extra = {});

class ServeProcess {
 public:
  // Starts the server and waits (up to 60 s) until it prints its port; with `wait_ready`, also
  // until /health says the model is loaded.
  ServeProcess(const std::string& jobs_dir, const std::vector<std::string>& extra = {},
               const std::vector<std::pair<std::string, std::string>>& env = {}, bool wait_ready = true);
  int port() const { return port_; }
  Child& child() { return *child_; }
  httplib::Client client() const;
  bool wait_ready(double timeout_s);
  int stop(int sig = SIGTERM);  // the exit code

 private:
  std::unique_ptr<Child> child_;
  int port_ = 0;
};

struct Reply {
  int status = 0;  // 0: no answer
  std::string body;
  httplib::Headers headers;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
  std::string header(const std::string& k) const;
};

Reply http_get(const ServeProcess& s, const std::string& path, const httplib::Headers& h = {});
Reply http_post(const ServeProcess& s, const std::string& path, const std::string& body, const httplib::Headers& h = {},
                const std::string& type = "application/json");
Reply http_delete(const ServeProcess& s, const std::string& path, const httplib::Headers& h = {});

// POST /v1/videos; the video object (the test fails when the status is not 200).
nlohmann::json submit(const ServeProcess& s, const nlohmann::json& body, const httplib::Headers& h = {});
// Polls GET /v1/videos/{id} until its status is `status` (or failed) or `timeout_s` passes; the
// last object seen (the test fails unless it reached `status`).
nlohmann::json poll_video(const ServeProcess& s, const std::string& id, const std::string& status,
                          double timeout_s = 60, const httplib::Headers& h = {});

// Sends raw bytes on a new connection and returns the server's answer: one whole response, or
// what came before it closed the connection or `timeout_s` passed.
std::string raw_request(int port, const std::string& bytes, double timeout_s = 5);
// A connection that sent `bytes` and stays open (a slow client); closed by the destructor.
class RawConnection {
 public:
  RawConnection(int port, const std::string& bytes);
  ~RawConnection();
  // Waits up to `timeout_s` for the server to close the connection; true when it did.
  bool wait_closed(double timeout_s);

 private:
  int fd_ = -1;
};

// Every record of JOBS/manifest.jsonl; counts of (id, status).
std::vector<nlohmann::json> journal(const std::string& jobs_dir);
std::map<std::pair<std::string, std::string>, int> journal_counts(const std::string& jobs_dir);

// The frames of an MP4 file.
std::vector<std::vector<uint8_t>> mp4_frames(const std::string& path);

}  // namespace t2v::test
